"""The common recommend contract (musicspace_shared.recommend), checked on one route for real.

Each recommend route's tests call `check_recommend_contract` with their client, route and a user
who has recommendations; every field of the shared request is exercised against the tracks'
rows in the database, so a route that ignored a field would fail here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from musicspace_shared.db.engine import make_engine
from musicspace_shared.db.tables import Track, UserTrack
from musicspace_shared.recommendation_ids import parse


@dataclass
class Row:
    artist: str
    genre: str
    subgenre: str
    year: int | None
    energy: float | None


async def _rows(db_url: str, user_id: int) -> tuple[dict[str, Row], set[str]]:
    engine = make_engine(url=db_url)
    try:
        async with engine.connect() as conn:
            tracks = (
                await conn.execute(
                    sa.select(
                        Track.track_id,
                        Track.artist,
                        Track.genre,
                        Track.subgenre,
                        Track.release_date,
                        Track.energy,
                    )
                )
            ).all()
            owned = (
                await conn.execute(
                    sa.select(UserTrack.track_id).where(UserTrack.user_id == user_id)
                )
            ).scalars()
            owned_ids = set(owned)
    finally:
        await engine.dispose()
    rows = {
        t: Row(
            a or "",
            g or "",
            s or "",
            int(d[:4]) if d and d[:4].isdigit() else None,
            e,
        )
        for t, a, g, s, d, e in tracks
    }
    return rows, owned_ids


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def _served(client: httpx.AsyncClient, path: str) -> float:
    """musicspace_recommendations_total of the route, over its sources and arms."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "musicspace_recommendations_total" and sample.labels["route"] == path
    )


def _ids(page: dict[str, Any]) -> list[str]:
    return [item["track_id"] for item in page["items"]]


async def check_recommend_contract(
    client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    *,
    db_url: str,
    source: str,
    owned_may_return: bool = True,
) -> None:
    """Shape, scores, the served counter, paging, cursor checks, filters, exclude,
    exclude_owned, max_per_artist."""
    rows, owned = await _rows(db_url, body["user_id"])
    # Shape: a fresh recommendation id per answer that names the route; scores in 0..1; each
    # answer counted as served on its route (online click-through per route).
    counted = await _served(client, path)
    big = await _post(client, path, body | {"limit": 15})
    again = await _post(client, path, body | {"limit": 15})
    assert await _served(client, path) == counted + 2
    assert big["source"] == source and parse(big["recommendation_id"]).source == source
    assert again["recommendation_id"] != big["recommendation_id"]
    assert _ids(again) == _ids(big) and len(big["items"]) == 15
    assert all(0.0 <= item["score"] <= 1.0 for item in big["items"])
    scores = [item["score"] for item in big["items"]]
    assert scores == sorted(scores, reverse=True)
    assert not owned & set(_ids(big))

    # Paging: three pages of five are the page of fifteen; the cursor carries on.
    pages, cursor = [], None
    for _ in range(3):
        page = await _post(
            client, path, body | {"limit": 5} | ({"cursor": cursor} if cursor else {})
        )
        pages.append(page)
        cursor = page["next_cursor"]
        assert cursor is not None
    assert [t for p in pages for t in _ids(p)] == _ids(big)

    # A cursor sent with other fields is refused, naming the cursor.
    foreign = await client.post(path, json=body | {"limit": 5, "cursor": cursor, "exclude": ["x"]})
    assert foreign.status_code == 422 and "cursor" in foreign.json()["detail"], foreign.text
    garbage = await client.post(path, json=body | {"cursor": "bm90IGEgY3Vyc29y"})
    assert garbage.status_code == 422 and "cursor" in garbage.json()["detail"], garbage.text

    # exclude: the top track is gone, the rest keep their order.
    top = _ids(big)[0]
    without = await _post(client, path, body | {"limit": 14, "exclude": [top]})
    assert top not in _ids(without)

    # max_per_artist over all pages.
    capped = await _post(client, path, body | {"limit": 20, "max_per_artist": 1})
    artists = Counter(rows[t].artist for t in _ids(capped))
    assert capped["items"] and max(artists.values()) == 1

    # Filters: every item passes them; the route finds some.
    genre = rows[_ids(big)[2]].genre
    by_genre = await _post(client, path, body | {"filters": {"genre": genre.upper()}})
    assert by_genre["items"] and {rows[t].genre for t in _ids(by_genre)} == {genre}
    subgenre = rows[_ids(big)[1]].subgenre
    by_sub = await _post(client, path, body | {"filters": {"subgenre": subgenre}})
    assert by_sub["items"] and {rows[t].subgenre for t in _ids(by_sub)} == {subgenre}
    year = next(rows[t].year for t in _ids(big) if rows[t].year)
    assert year is not None
    window = {"min_year": year - 3, "max_year": year + 3}
    by_year = await _post(client, path, body | {"filters": window})
    assert by_year["items"]
    assert all(year - 3 <= (rows[t].year or 0) <= year + 3 for t in _ids(by_year))
    energetic = await _post(client, path, body | {"filters": {"min_energy": 0.7}})
    assert energetic["items"] and all((rows[t].energy or 0) >= 0.7 for t in _ids(energetic))
    nothing = await _post(client, path, body | {"filters": {"genre": "no such genre"}})
    assert nothing["items"] == [] and nothing["next_cursor"] is None

    # exclude_owned false: the user's own tracks may come back.
    if owned and owned_may_return:
        mine = await _post(
            client, path, body | {"limit": 50, "exclude_owned": False, "max_per_artist": 50}
        )
        assert owned & set(_ids(mine))
