"""Migrations are the only way the schema is made: they must produce exactly the models."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from app.db import create_db_engine
from app.migrate import alembic_config, current_revision, head_revision, is_at_head
from app.models import Base


def schema_differences(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_migrated_schema_matches_models(database_url):
    engine = create_db_engine(database_url)
    try:
        assert is_at_head(engine)
        assert current_revision(engine) == head_revision()
        assert schema_differences(engine) == []
        indexes = {i["name"] for i in inspect(engine).get_indexes("calibrations")}
        assert "uq_calibrations_one_active_per_task" in indexes
    finally:
        engine.dispose()


def test_downgrade_and_upgrade_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = alembic_config(url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    engine = create_db_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert is_at_head(engine)
    engine.dispose()
