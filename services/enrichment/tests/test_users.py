"""Ingestion over HTTP on MariaDB and SQLite: users, libraries, catalog tracks.

Idempotent (the same call twice changes nothing), transactional (a bad row names its index
and nothing is written), unknown tracks created blank, measured features never overwritten.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa

from musicspace_enrichment.app import create_app
from musicspace_enrichment.clients import build_peers
from musicspace_enrichment.repository import write_predictions
from musicspace_shared.features import FEATURES
from services.enrichment.tests.fakes import FakePeers
from services.enrichment.tests.helpers import ADMIN_KEY, new_track_id, new_user_id, settings_for
from tests.asgi import serving
from tests.credentials import as_user
from tests.factories import features


@pytest.fixture
async def client(any_db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(any_db_url))
    async with serving(app) as http:
        http.app = app  # type: ignore[attr-defined]
        yield http


async def rows(client: httpx.AsyncClient, sql: str, **params: object) -> list[tuple]:
    async with client.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        return [tuple(r) for r in (await conn.execute(sa.text(sql), params)).all()]


async def library(client: httpx.AsyncClient, user_id: int) -> dict[str, str | None]:
    found = await rows(
        client, "SELECT track_id, playlist_id FROM user_track WHERE user_id = :u", u=user_id
    )
    return dict(found)  # type: ignore[arg-type]


async def test_put_user_creates_then_is_unchanged_then_updates_one_field(client) -> None:
    user = new_user_id()
    ref = f"acct-{user}"
    created = await client.put(f"/api/users/{user}", json={"external_ref": ref, "name": "Ann"})
    again = await client.put(f"/api/users/{user}", json={"external_ref": ref, "name": "Ann"})
    renamed = await client.put(f"/api/users/{user}", json={"name": "Anna"})
    assert (created.status_code, created.json()["outcome"]) == (201, "inserted")
    assert (again.status_code, again.json()["outcome"]) == (200, "unchanged")
    assert renamed.json()["outcome"] == "updated"
    # A field left out keeps its value; null clears it.
    assert renamed.json()["external_ref"] == ref and renamed.json()["name"] == "Anna"
    cleared = await client.put(f"/api/users/{user}", json={"name": None})
    assert cleared.json()["name"] is None and cleared.json()["external_ref"] == ref
    shown = await client.get(f"/api/users/{user}")
    assert shown.json()["library_size"] == 0 and shown.json()["external_ref"] == ref


async def test_external_ref_of_another_user_is_409_and_nothing_changes(client) -> None:
    first, second = new_user_id(), new_user_id()
    await client.put(f"/api/users/{first}", json={"external_ref": f"ref-{first}"})
    await client.put(f"/api/users/{second}", json={"name": "Bo"})
    clash = await client.put(f"/api/users/{second}", json={"external_ref": f"ref-{first}"})
    assert clash.status_code == 409 and str(first) in clash.json()["detail"]
    assert (await client.get(f"/api/users/{second}")).json()["external_ref"] is None


async def test_writes_need_the_app_credential_or_admin_not_a_user_token(client) -> None:
    user = new_user_id()
    token = as_user(user)
    track = {"track_id": new_track_id(), "title": "T"}
    refused = [
        await client.put(f"/api/users/{user}", json={}, headers=token),
        await client.put(
            f"/api/users/{user}/library", json={"mode": "merge", "tracks": []}, headers=token
        ),
        await client.post("/api/tracks", json={"tracks": [track]}, headers=token),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    admin = {"Authorization": "Bearer test-admin-key"}
    assert (await client.put(f"/api/users/{user}", json={}, headers=admin)).status_code == 201
    assert (await client.get(f"/api/users/{user}", headers=token)).status_code == 200
    assert (await client.get(f"/api/users/{user}", headers=as_user(user + 1))).status_code == 403


async def test_library_of_an_unknown_user_is_404(client) -> None:
    response = await client.put(
        f"/api/users/{new_user_id()}/library",
        json={"mode": "merge", "tracks": [{"track_id": new_track_id()}]},
    )
    assert response.status_code == 404 and "PUT /api/users/" in response.json()["detail"]


async def test_library_merge_creates_unknown_tracks_blank_and_is_idempotent(client) -> None:
    user, known, unknown = new_user_id(), new_track_id(), new_track_id()
    await client.put(f"/api/users/{user}", json={})
    await client.post("/api/tracks", json={"tracks": [{"track_id": known, "title": "Known"}]})
    body = {
        "mode": "merge",
        "tracks": [
            {"track_id": known, "playlist_id": "pl1", "title": "ignored for a known track"},
            {"track_id": unknown, "playlist_id": "pl1", "title": "New Song", "artist": "New"},
        ],
    }
    first = (await client.put(f"/api/users/{user}/library", json=body)).json()
    second = (await client.put(f"/api/users/{user}/library", json=body)).json()
    assert (first["inserted"], first["tracks_created"], first["library_size"]) == (2, 1, 2)
    assert (second["inserted"], second["updated"], second["unchanged"]) == (0, 0, 2)
    assert second["tracks_created"] == 0
    created = await rows(
        client,
        f"SELECT title, artist, features_source, {', '.join(FEATURES)} FROM track "
        "WHERE track_id = :t",
        t=unknown,
    )
    assert created[0][:3] == ("New Song", "New", None)
    assert all(value is None for value in created[0][3:])  # blank: enrichment fills it
    assert (await rows(client, "SELECT title FROM track WHERE track_id = :t", t=known)) == [
        ("Known",)
    ]


async def test_library_merge_keeps_others_and_replace_removes_them(client) -> None:
    user = new_user_id()
    a, b, c = (new_track_id() for _ in range(3))
    await client.put(f"/api/users/{user}", json={})
    merge = {"mode": "merge", "tracks": [{"track_id": a, "playlist_id": "p1"}, {"track_id": b}]}
    await client.put(f"/api/users/{user}/library", json=merge)
    moved = {"mode": "merge", "tracks": [{"track_id": a, "playlist_id": "p2"}, {"track_id": c}]}
    merged = (await client.put(f"/api/users/{user}/library", json=moved)).json()
    assert (merged["inserted"], merged["updated"], merged["removed"]) == (1, 1, 0)
    assert await library(client, user) == {a: "p2", b: None, c: None}
    replace = {"mode": "replace", "tracks": [{"track_id": c}]}
    replaced = (await client.put(f"/api/users/{user}/library", json=replace)).json()
    assert (replaced["removed"], replaced["unchanged"], replaced["library_size"]) == (2, 1, 1)
    assert await library(client, user) == {c: None}
    emptied = await client.put(f"/api/users/{user}/library", json={"mode": "replace", "tracks": []})
    assert emptied.json()["removed"] == 1 and await library(client, user) == {}


async def test_a_bad_row_rejects_the_whole_library_with_its_index(client) -> None:
    user = new_user_id()
    await client.put(f"/api/users/{user}", json={})
    good = [{"track_id": new_track_id()} for _ in range(3)]
    for bad, index in (
        ({"track_id": "has space"}, 3),
        ({"track_id": new_track_id(), "title": "x" * 513}, 3),
        ({"track_id": new_track_id(), "popularity": "50"}, 3),
        ({"track_id": new_track_id(), "release_date": "14/06/2019"}, 3),
        ({"track_id": new_track_id(), "mood": "happy"}, 3),
        (good[1], 3),  # repeated id: refused before any write
    ):
        body = {"mode": "merge", "tracks": [*good, bad]}
        response = await client.put(f"/api/users/{user}/library", json=body)
        assert response.status_code == 422, (bad, response.text)
        assert f"tracks.{index}" in response.json()["detail"], response.json()
    assert await library(client, user) == {}
    ids = [t["track_id"] for t in good]
    found = await rows(
        client,
        "SELECT track_id FROM track WHERE track_id IN (:a, :b, :c)",
        a=ids[0],
        b=ids[1],
        c=ids[2],
    )
    assert found == []  # nothing written: not even the catalog rows of the good items


@pytest.mark.parametrize(
    "body",
    [
        {"tracks": []},
        {"mode": "merge"},
        {"mode": "sync", "tracks": []},
        {"mode": "merge", "tracks": [], "extra": 1},
    ],
)
async def test_malformed_library_bodies_are_422(client, body) -> None:
    user = new_user_id()
    await client.put(f"/api/users/{user}", json={})
    assert (await client.put(f"/api/users/{user}/library", json=body)).status_code == 422


async def test_tracks_upsert_counts_and_is_idempotent(client) -> None:
    one, two = new_track_id(), new_track_id()
    tracks = [
        {
            "track_id": one,
            "title": "One",
            "artist": "A",
            "album": "Al",
            "release_date": "2019-06-14",
            "popularity": 40,
            "genre": "pop",
            "subgenre": "dance pop",
            "features": features(),
        },
        {"track_id": two, "title": "Two", "artist": "B"},
    ]
    first = (await client.post("/api/tracks", json={"tracks": tracks})).json()
    second = (await client.post("/api/tracks", json={"tracks": tracks})).json()
    assert first == {"received": 2, "inserted": 2, "updated": 0, "unchanged": 0}
    assert second == {"received": 2, "inserted": 0, "updated": 0, "unchanged": 2}
    retitled = [{"track_id": one, "title": "One (Remastered)"}, {"track_id": two, "title": "Two"}]
    third = (await client.post("/api/tracks", json={"tracks": retitled})).json()
    assert (third["updated"], third["unchanged"]) == (1, 1)
    stored = await rows(
        client,
        "SELECT title, artist, popularity, features_source, tempo FROM track WHERE track_id = :t",
        t=one,
    )
    # Left-out fields kept (artist, popularity, the measured features).
    assert stored == [("One (Remastered)", "A", 40, "measured", 120.0)]


async def test_measured_features_replace_predicted_and_no_prediction_overwrites_them(
    client,
) -> None:
    track = new_track_id()
    await client.post("/api/tracks", json={"tracks": [{"track_id": track, "title": "P"}]})
    engine = client.app.state.engine  # type: ignore[attr-defined]
    stamp = datetime.now(UTC)
    predicted = [(track, [0.1] * 7 + [90.0, -10.0])]
    async with engine.begin() as conn:
        assert (
            await write_predictions(conn, predicted, model_version="m2-x", predicted_at=stamp) == 1
        )
    measured = {"track_id": track, "features": features(energy=0.91)}
    result = (await client.post("/api/tracks", json={"tracks": [measured]})).json()
    assert result["updated"] == 1
    async with engine.begin() as conn:  # a later prediction finds nothing to write
        assert (
            await write_predictions(conn, predicted, model_version="m2-y", predicted_at=stamp) == 0
        )
    stored = await rows(
        client,
        "SELECT features_source, energy, external_metadata FROM track WHERE track_id = :t",
        t=track,
    )
    source, energy, metadata = stored[0]
    assert (source, energy) == ("measured", 0.91)
    assert "m2" not in str(metadata or "")  # the prediction's stamp went with its values
    again = (await client.post("/api/tracks", json={"tracks": [measured]})).json()
    assert again["unchanged"] == 1


@pytest.mark.parametrize(
    ("track", "where"),
    [
        ({"features": {**features(), "tempo": None}}, "features.tempo"),
        ({"features": {k: v for k, v in features().items() if k != "tempo"}}, "features.tempo"),
        ({"features": features(danceability=1.5)}, "features.danceability"),
        ({"features": features(loudness="-5")}, "features.loudness"),
        ({"popularity": 101}, "popularity"),
        ({"popularity": True}, "popularity"),
        ({"title": ""}, "title"),
        ({"genre": 5}, "genre"),
    ],
)
async def test_bad_catalog_rows_are_422_with_the_row_index_and_nothing_written(
    client, track, where
) -> None:
    good = {"track_id": new_track_id(), "title": "fine"}
    bad = {"track_id": new_track_id(), **track}
    response = await client.post("/api/tracks", json={"tracks": [good, bad]})
    assert response.status_code == 422, response.text
    assert f"tracks.1.{where}" in response.json()["detail"]
    assert await rows(client, "SELECT 1 FROM track WHERE track_id = :t", t=good["track_id"]) == []


async def test_repeated_track_id_in_one_call_is_422_naming_both_rows(client) -> None:
    track = new_track_id()
    response = await client.post(
        "/api/tracks", json={"tracks": [{"track_id": track}, {"track_id": track, "title": "x"}]}
    )
    assert response.status_code == 422
    assert response.json()["index"] == 1 and "tracks.0" in response.json()["detail"]


async def test_ingestion_routes_are_documented_with_their_fields(client) -> None:
    schema = client.app.openapi()  # type: ignore[attr-defined]
    paths = schema["paths"]
    assert {"put", "get", "delete"} <= set(paths["/api/users/{user_id}"])
    assert "put" in paths["/api/users/{user_id}/library"] and "post" in paths["/api/tracks"]
    components = schema["components"]["schemas"]
    for name in ("LibraryTrack", "CatalogTrack", "AudioFeatures", "LibraryPut", "UserPut"):
        fields = components[name]["properties"]
        undocumented = [f for f, spec in fields.items() if "description" not in spec]
        assert undocumented == [], (name, undocumented)


async def test_init_models_initialises_a_user_created_over_http_with_no_cli_step(client) -> None:
    fake = FakePeers(admin_key=ADMIN_KEY)
    app = client.app  # type: ignore[attr-defined]
    app.state.runtime.peers = build_peers(
        app.state.settings, transport=httpx.MockTransport(fake.handler)
    )
    user = new_user_id()
    tracks = [
        {"track_id": new_track_id(), "title": f"Song {i}", "artist": "Someone", "genre": "pop"}
        for i in range(12)
    ]
    await client.put(f"/api/users/{user}", json={"name": "New"})
    await client.put(f"/api/users/{user}/library", json={"mode": "replace", "tracks": tracks})
    answer = (await client.post("/api/init-models", json={"user_id": user})).json()
    steps = {s["name"]: s for s in answer["steps"]}
    assert answer["ok"] is True, answer
    assert steps["enrich"]["result"]["enriched"] == 12  # the blank tracks got features
    assert [steps[n]["status"] for n in ("m1", "m2_svm", "m3")] == ["ok", "ok", "ok"]
    ids = [t["track_id"] for t in tracks]
    sources = await rows(
        client,
        "SELECT features_source FROM track WHERE track_id IN (:a, :b)",
        a=ids[0],
        b=ids[-1],
    )
    assert sources == [("predicted",), ("predicted",)]
    assert fake.unknown == []

    # Nothing changed: m1 is not trained again. A removal (which leaves no newer added_at)
    # is a change: user.updated_at moves and init-models retrains.
    again = (await client.post("/api/init-models", json={"user_id": user})).json()
    assert {s["name"]: s["status"] for s in again["steps"]}["m1"] == "skipped"
    await asyncio.sleep(1.1)  # MariaDB keeps whole seconds
    fewer = {"mode": "replace", "tracks": tracks[:-1]}
    assert (await client.put(f"/api/users/{user}/library", json=fewer)).json()["removed"] == 1
    after = (await client.post("/api/init-models", json={"user_id": user})).json()
    assert {s["name"]: s["status"] for s in after["steps"]}["m1"] == "ok"


async def test_other_methods_on_a_user_path_answer_405_naming_every_allowed_one(client) -> None:
    response = await client.post(f"/api/users/{new_user_id()}", json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, HEAD, PUT"
