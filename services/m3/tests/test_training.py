"""Global training: held-out protocol, published artifact with verified metadata, registry row."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from musicspace_m3.training import held_out_split
from musicspace_shared.db.engine import make_engine


def test_train_global_publishes_model_with_metadata(
    trained: dict[str, Any], model_root: Path
) -> None:
    path = Path(trained["path"])
    assert (
        path.parent == model_root / "M3" and path.name == "recommender_U2_MyInitialT_20260201.cbm"
    )
    meta = json.loads(path.with_name(path.name + ".meta.json").read_text())
    assert meta["version"] == trained["version"]
    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["rows"] > 0 and meta["trained_at"]
    assert 0.0 <= meta["metrics"]["held_out_ndcg@10"] <= 1.0
    assert meta["metrics"]["held_out_queries"] >= 1
    assert meta["extra"]["params"]["loss_function"]


async def test_train_global_records_model_in_registry(
    trained: dict[str, Any], m3_db_url: str
) -> None:
    engine = make_engine(url=m3_db_url)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(sa.text("SELECT kind, version FROM model_record WHERE family='M3'"))
        ).all()
    await engine.dispose()
    assert ("global", trained["version"]) in [tuple(r) for r in rows]


def test_held_out_split_is_deterministic_and_disjoint() -> None:
    users = list(range(1, 41))
    train, held = held_out_split(users)
    assert (train, held) == held_out_split(list(reversed(users)))
    assert not set(train) & set(held) and set(train) | set(held) == set(users)
    assert 1 <= len(held) < len(train)
