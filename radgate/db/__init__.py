"""The database: SQLAlchemy 2 engine and sessions, Alembic migrations, SQLite (WAL) or PostgreSQL."""

from radgate.db.engine import Database, database_for, open_database
from radgate.db.schema import Base, Instance, Rejection, Series, Study

__all__ = ["Base", "Database", "Instance", "Rejection", "Series", "Study", "database_for", "open_database"]
