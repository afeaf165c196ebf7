SELECT full_name, salary_eur FROM employees;
DELETE FROM customers;
