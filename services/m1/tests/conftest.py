"""m1 fixtures: the demo-subset database, a temp model root with a trained global model, an app."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from musicspace_m1.training import train_global_from_db
from musicspace_shared.db.engine import make_engine
from tests.plugin import model_service_fixtures

from .helpers import make_settings

service_db_url, model_root, trained, app, client = model_service_fixtures(
    "m1", db_url="demo_db_url", make_settings=make_settings, train=train_global_from_db
)


@pytest.fixture(scope="session")
async def demo_users(demo_db_url: str) -> list[int]:
    """Imported playlist users with at least 20 PMS tracks that have features, most first."""
    engine = make_engine(url=demo_db_url)
    query = sa.text(
        "SELECT ut.user_id, COUNT(*) AS n FROM user_track ut JOIN track t ON t.track_id = ut.track_id "
        "WHERE t.danceability IS NOT NULL GROUP BY ut.user_id HAVING n >= 20 ORDER BY n DESC, ut.user_id"
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    await engine.dispose()
    return [int(r[0]) for r in rows]
