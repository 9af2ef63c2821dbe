"""m3 fixtures: this package's own demo-subset database, a temp model root, a trained global model."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicspace_m3.training import train_global_from_db
from tests.databases import demo_database
from tests.plugin import model_service_fixtures

from .helpers import make_settings


@pytest.fixture(scope="session")
def m3_db_url(demo_subset: tuple[Path, Path]) -> str:
    """A migrated MariaDB database with the demo subset, owned by the m3 tests (they write events)."""
    return demo_database(demo_subset, "msm3")


service_db_url, model_root, trained, app, client = model_service_fixtures(
    "m3", db_url="m3_db_url", make_settings=make_settings, train=train_global_from_db
)
