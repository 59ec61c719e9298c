"""The migrations build exactly the schema the models describe, and go down again."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from services.common.db import MIGRATIONS, upgrade_schema
from services.common.models import Base


def test_head_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.sqlite'}"
    upgrade_schema(url)
    with create_engine(url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_downgrade_to_nothing_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'updown.sqlite'}"
    upgrade_schema(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes.update(configure_logger=False, url_given=True)
    command.downgrade(config, "base")
    assert set(inspect(create_engine(url)).get_table_names()) <= {"alembic_version"}
    upgrade_schema(url)
    assert "nodes" in inspect(create_engine(url)).get_table_names()


def test_0023_makes_each_runbooks_name_its_first_trait(tmp_path: Path) -> None:
    """As Ironic's migrate_runbook_names_to_traits: runbooks from before API 1.112 stay
    usable by the nodes whose traits name them."""
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'runbooks.sqlite'}"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes.update(configure_logger=False, url_given=True)
    command.upgrade(config, "0022")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO runbooks (uuid, name, steps, disable_ramdisk, public, extra, "
            "created_at) VALUES ('6f1e2d3c-0000-4000-8000-000000000001', 'CUSTOM_WIPE', '[]', "
            "0, 0, '{}', '2026-12-05 00:00:00')"))
    upgrade_schema(url)
    with engine.connect() as connection:
        traits = connection.execute(text("SELECT traits FROM runbooks")).scalar_one()
    assert traits in ('["CUSTOM_WIPE"]', ["CUSTOM_WIPE"])
