"""The read model (SQLAlchemy + Alembic): a projection of Temporal, rebuilt from it on demand."""
