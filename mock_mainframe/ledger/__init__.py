"""The core's ledger: DB2-style tables in SQLite (or PostgreSQL), seed data, posting engine."""
