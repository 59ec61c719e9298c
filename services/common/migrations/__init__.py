"""The alembic migrations of the schema, shipped in the package (services/common/db.py runs
them; `alembic -c alembic.ini` at the top of the repository for developers)."""
