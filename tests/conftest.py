"""Fixtures every tier may use: a throwaway PostgreSQL (`postgres_url`, `pg_database`)."""

from pg.fixtures import pg_database, postgres_cluster, postgres_url

__all__ = ["pg_database", "postgres_cluster", "postgres_url"]
