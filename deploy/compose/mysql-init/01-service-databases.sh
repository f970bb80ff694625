#!/bin/bash
# One database and one user per service, each user allowed only its own database.
#
# Run by the mysql image once, on an empty data volume (/docker-entrypoint-initdb.d).
# A shell script rather than a .sql file because the passwords come from the
# environment (<NAME>_DB_PASSWORD, set in docker-compose.yml), never from this file.
# Passwords are used inside single quotes and in DATABASE_URL: keep them URL-safe
# (letters, digits, - _ .).
set -eo pipefail

for name in ${SERVICE_DATABASES:?list the service databases, e.g. "scheduler sender"}; do
    password_var="$(echo "${name}" | tr '[:lower:]-' '[:upper:]_')_DB_PASSWORD"
    password="${!password_var:?${password_var} is not set}"
    echo "creating database ${name} and user ${name}"
    MYSQL_PWD="${MYSQL_ROOT_PASSWORD}" mysql --protocol=socket -uroot <<SQL
CREATE DATABASE IF NOT EXISTS \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci;
CREATE USER IF NOT EXISTS '${name}'@'%' IDENTIFIED BY '${password}';
GRANT ALL PRIVILEGES ON \`${name}\`.* TO '${name}'@'%';
SQL
done
