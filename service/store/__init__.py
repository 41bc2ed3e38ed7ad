"""The system of record: on PostgreSQL (schema, connection, migrations and
``repository.SqlStore``), or in memory (``memory.InMemoryStore``), both the service's
``service.ports.Store``."""
