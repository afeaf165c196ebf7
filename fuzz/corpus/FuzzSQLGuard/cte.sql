WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5), t AS (SELECT status, COUNT(*) AS c FROM tickets GROUP BY status)
SELECT x, status, c FROM n, t -- comment
