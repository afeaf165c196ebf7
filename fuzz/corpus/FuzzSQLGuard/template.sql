SELECT COUNT(*) AS shipments, ROUND(SUM(s.weight_kg), 1) AS total_weight_kg, ROUND(AVG(s.weight_kg), 1) AS average_weight_kg
FROM shipments s JOIN customers c ON c.id = s.customer_id
WHERE 1 = 1 AND s.service_level = 'Express' AND s.status IN ('delivered', 'in_transit') AND s.shipped_on BETWEEN '2025-01-01' AND '2025-06-30'
