"""The read model (SQLAlchemy + Alembic): a projection of Temporal, arriving with issue 3."""
