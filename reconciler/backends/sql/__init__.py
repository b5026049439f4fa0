"""SQL registries: shared tables and migrations, SQLite, PostgreSQL, snapshots."""
