SELECT COUNT(*) FROM customers
