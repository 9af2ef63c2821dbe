"""m2 fixtures: this package's own demo-subset database, a temp model root, a trained model."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from musicspace_m2.training import train_global_from_db
from tests.databases import demo_database
from tests.plugin import model_service_fixtures

from .helpers import FAST_MODEL, make_settings


@pytest.fixture(scope="session")
def m2_db_url(demo_subset: tuple[Path, Path]) -> str:
    """A migrated MariaDB database with the demo subset, owned by the m2 tests (they add rows)."""
    return demo_database(demo_subset, "msm2")


service_db_url, model_root, trained, app, client = model_service_fixtures(
    "m2",
    db_url="m2_db_url",
    make_settings=make_settings,
    train=partial(train_global_from_db, config=FAST_MODEL, progress=lambda _m: None),
)
