SELECT date_trunc('day', created_at) AS day, count(*)
FROM orders
GROUP BY 1
ORDER BY 1;
