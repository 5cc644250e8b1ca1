"""Storage: SQLAlchemy 2 async models, the database handle and Alembic migrations."""
