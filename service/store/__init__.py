"""PostgreSQL, the system of record: schema, connection, migrations and the store."""
