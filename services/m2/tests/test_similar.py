"""GET /api/m2/similar/{track_id}."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from musicspace_m2.predictor import pipe_tokens
from musicspace_m2.similar import DistinctTfidfVectorizer, _groups_of_more_than_one
from tests.factories import create_track

from .helpers import db_session, unique_text


async def test_similar_excludes_the_track_and_its_duplicates(
    client: httpx.AsyncClient, m2_db_url: str
) -> None:
    title, artist = unique_text("Midnight Echo"), unique_text("The Testers")
    async with db_session(m2_db_url) as session:
        original = await create_track(session, title=title, artist=artist, album="First")
        duplicate = await create_track(session, title=title.upper(), artist=artist, album="Best Of")
        sibling = await create_track(
            session, title=unique_text("Other Song"), artist=artist, album="First"
        )
    response = await client.get(f"/api/m2/similar/{original.track_id}", params={"limit": 10})
    assert response.status_code == 200, response.text
    body = response.json()
    ids = [item["track_id"] for item in body["items"]]
    assert len(ids) == 10
    assert original.track_id not in ids and duplicate.track_id not in ids
    # The same artist's other track is the nearest neighbour once the duplicates are gone.
    assert ids[0] == sibling.track_id
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    # A 0..1 similarity (it once reached 2.24 for a score documented as a cosine).
    assert all(0 <= score <= 1 for score in scores) and scores[0] > 0.5


async def test_similar_returns_distinct_recordings(
    client: httpx.AsyncClient, m2_db_url: str
) -> None:
    title, artist = unique_text("Twin"), unique_text("Copycats")
    async with db_session(m2_db_url) as session:
        seed = await create_track(session, title=unique_text("Seed"), artist=artist)
        await create_track(session, title=title, artist=artist)
        await create_track(session, title=title, artist=artist)
    response = await client.get(f"/api/m2/similar/{seed.track_id}", params={"limit": 5})
    titles = [item["title"] for item in response.json()["items"]]
    assert titles.count(title) == 1


async def test_similar_unknown_track_returns_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/m2/similar/noSuchTrack0000")
    assert response.status_code == 404
    assert response.json()["title"] == "Not found"


async def test_similar_limit_out_of_bounds_returns_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/m2/similar/anything", params={"limit": 0})
    assert response.status_code == 422


@pytest.mark.parametrize(
    "params",
    [
        {"analyzer": pipe_tokens, "dtype": np.float32},
        {"min_df": 2, "sublinear_tf": True, "dtype": np.float32},
    ],
)
def test_counting_distinct_documents_once_fits_what_sklearn_fits(params) -> None:
    """Mostly repeated documents (genre tags): the same matrix, vocabulary, weights and
    transform as TfidfVectorizer's own fit."""
    rng = np.random.default_rng(0)
    values = ["g=pop|s=dance pop", "g=rock|s=hard rock", "g=pop|s=indie poptimism", "g=rap|s=trap"]
    documents = [values[i] for i in rng.choice(len(values), size=500, p=[0.5, 0.3, 0.15, 0.05])]
    once, plain = DistinctTfidfVectorizer(**params), TfidfVectorizer(**params)
    fitted, expected = once.fit_transform(documents), plain.fit_transform(documents)
    assert once.vocabulary_ == plain.vocabulary_ and np.array_equal(once.idf_, plain.idf_)
    assert (fitted != expected).nnz == 0 and fitted.dtype == expected.dtype
    later = [*documents[:50], "g=jazz|s=bebop pop"]
    assert (once.transform(later) != plain.transform(later)).nnz == 0


def test_rows_of_a_recording_are_grouped_in_row_order() -> None:
    codes = np.array([0, 1, 0, 2, 1, 0, 3])
    assert _groups_of_more_than_one(codes) == {0: [0, 2, 5], 1: [1, 4]}
    assert _groups_of_more_than_one(np.arange(3)) == {}
    assert _groups_of_more_than_one(np.zeros(0, dtype=np.int64)) == {}
