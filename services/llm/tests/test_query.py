"""A query start to finish over a small in-memory index: names first, filters hard, reasons true."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson
import pytest

from musicspace_llm import query as query_module
from musicspace_llm import render
from musicspace_llm.documents import decade
from musicspace_llm.embeddings import OfflineEmbedder
from musicspace_llm.index import TrackIndex
from musicspace_llm.indexing import embed_catalog
from musicspace_llm.query import Ranked, embed_texts, like_artist, prepare, rank
from musicspace_llm.reasons import compose_reason
from musicspace_llm.render import body
from musicspace_llm.repository import CatalogRows
from musicspace_llm.schemas import SearchResponse
from musicspace_llm.service import Result
from musicspace_llm.understanding import QueryUnderstanding
from musicspace_shared.catalog import TrackFrame

# (title, artist, genre, subgenre, danceability, energy, valence, tempo, release date)
TRACKS = [
    ("Shape of You", "Ed Sheeran", "pop", "dance pop", 0.83, 0.65, 0.93, 96, "2017-03-03"),
    (
        "Shape of You - Galantis Remix",
        "Ed Sheeran",
        "edm",
        "pop edm",
        0.7,
        0.8,
        0.7,
        128,
        "2017-05-05",
    ),
    ("Perfect", "Ed Sheeran", "pop", "post-teen pop", 0.6, 0.45, 0.17, 95, "2017-03-03"),
    ("Over", "Drake", "rap", "hip hop", 0.55, 0.8, 0.4, 100, "2010-06-15"),
    ("Back To Back", "Drake", "rap", "trap", 0.75, 0.6, 0.5, 86, "2015-07-29"),
    ("Forever", "Drake", "rap", "hip hop", 0.5, 0.9, 0.4, 105, "2009-01-01"),
    ("Money Trees", "Kendrick Lamar", "rap", "hip hop", 0.74, 0.53, 0.37, 72, "2012-10-22"),
    ("Sicko Mode", "Travis Scott", "rap", "trap", 0.83, 0.73, 0.45, 155, "2018-08-03"),
    ("Bohemian Rhapsody", "Queen", "rock", "classic rock", 0.39, 0.4, 0.22, 72, "1975-10-31"),
    ("Don't Stop Me Now", "Queen", "rock", "classic rock", 0.56, 0.87, 0.6, 156, "1978-11-10"),
    ("Dancing Queen", "ABBA", "pop", "dance pop", 0.54, 0.87, 0.75, 101, "1976-08-16"),
    ("Boy With Luv", "BTS", "pop", "post-teen pop", 0.65, 0.86, 0.8, 120, "2019-04-12"),
    ("Run To The Hills", "Iron Maiden", "rock", "hard rock", 0.3, 0.95, 0.4, 172, "1982-03-22"),
    ("Thunderstruck", "AC/DC", "rock", "hard rock", 0.5, 0.89, 0.25, 134, "1990-09-24"),
    ("Paranoid", "Black Sabbath", "rock", "hard rock", 0.42, 0.63, 0.38, 163, "1970-09-18"),
    ("Enter Sandman", "Metallica", "rock", "hard rock", 0.58, 0.83, 0.6, 123, "1991-08-12"),
    (
        "Smells Like Teen Spirit",
        "Nirvana",
        "rock",
        "permanent wave",
        0.5,
        0.91,
        0.72,
        117,
        "1991-09-10",
    ),
    ("Gasolina", "Daddy Yankee", "latin", "reggaeton", 0.86, 0.8, 0.74, 96, "2004-07-13"),
    ("Hips Don't Lie", "Shakira", "latin", "latin pop", 0.78, 0.82, 0.76, 100, "2005-02-28"),
    ("Clair de Lune", "Claude Debussy", "pop", "indie poptimism", 0.3, 0.05, 0.1, 66, "1905-01-01"),
    ("Sugar", "Maroon 5", "pop", "post-teen pop", 0.75, 0.79, 0.88, 120, "2015-01-13"),
    (
        "I Think She Like Me",
        "Rick Ross",
        "rap",
        "southern hip hop",
        0.7,
        0.7,
        0.5,
        80,
        "2017-03-17",
    ),
]


@pytest.fixture(scope="module")
def engine() -> tuple[TrackIndex, QueryUnderstanding, OfflineEmbedder]:
    features = np.full((len(TRACKS), 9), np.nan)
    for i, t in enumerate(TRACKS):
        features[i, [0, 1, 2, 7]] = [t[4], t[5], t[6], t[7]]
    frame = TrackFrame(
        track_ids=[f"t{i}" for i in range(len(TRACKS))],
        titles=[t[0] for t in TRACKS],
        artists=[t[1] for t in TRACKS],
        albums=["" for _ in TRACKS],
        genres=[t[2] for t in TRACKS],
        subgenres=[t[3] for t in TRACKS],
        popularity=np.full(len(TRACKS), 50.0),
        features=features,
        release_dates=[t[8] for t in TRACKS],
    )
    decades = np.array([decade(t[8]) or 0 for t in TRACKS], dtype=np.int64)

    async def build():  # noqa: ANN202
        embedder = OfflineEmbedder()
        index, _ = await embed_catalog(CatalogRows(frame, decades, None), embedder=embedder)
        return index, await QueryUnderstanding.build(embedder), embedder

    return asyncio.run(build())


def search(engine, query: str, limit: int = 5) -> tuple[Ranked, list[str], list[str]]:  # noqa: ANN001
    index, understanding, embedder = engine
    prepared = prepare(query, index)
    ranked = rank(
        index,
        understanding,
        prepared,
        embedder.encode(embed_texts(understanding, prepared)),
        limit=limit,
    )
    titles = [f"{index.frame.artists[m.row]} - {index.frame.titles[m.row]}" for m in ranked.matches]
    reasons = [compose_reason(index, m, ranked.intent) for m in ranked.matches]
    return ranked, titles, reasons


def test_a_typed_title_comes_first_before_its_remix_and_is_explained_by_its_title(engine) -> None:  # noqa: ANN001
    ranked, titles, reasons = search(engine, "Shape of You")
    assert titles[:2] == ["Ed Sheeran - Shape of You", "Ed Sheeran - Shape of You - Galantis Remix"]
    # "you" is not a genre: the reason cites the title, nothing the words only resembled.
    assert reasons[0] == "title 'Shape of You'"
    assert not ranked.intent.genres and not ranked.intent.subgenres


def test_title_and_artist_with_a_typo_find_the_track(engine) -> None:  # noqa: ANN001
    _, titles, reasons = search(engine, "kendrik lamar mony trees")
    assert titles[0] == "Kendrick Lamar - Money Trees"
    assert "by Kendrick Lamar" in reasons[0]


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("Boy With Lu", "BTS - Boy With Luv"),
        ("Back Tu Back", "Drake - Back To Back"),  # "tu" is a word of its own
        ("i think she like me rick ross", "Rick Ross - I Think She Like Me"),  # not "like <artist>"
    ],
)
def test_a_name_typed_with_a_real_word_in_it_finds_the_track(
    engine, query: str, title: str
) -> None:  # noqa: ANN001
    ranked, titles, reasons = search(engine, query)
    assert titles[0] == title
    assert ranked.intent.similar_to is None
    assert reasons[0].startswith(("title", "by"))


def test_songs_by_an_artist_rank_the_artist_before_titles_containing_the_name(engine) -> None:  # noqa: ANN001
    ranked, titles, reasons = search(engine, "songs by Queen", limit=3)
    assert titles[:2] == ["Queen - Bohemian Rhapsody", "Queen - Don't Stop Me Now"] or titles[
        :2
    ] == [
        "Queen - Don't Stop Me Now",
        "Queen - Bohemian Rhapsody",
    ]
    assert ranked.intent.artist == "Queen"
    assert reasons[0] == "by Queen"


@pytest.mark.parametrize(
    ("query", "artist"),
    [
        ("퀸 노래 틀어줘", "Queen"),
        ("방탄소년단 노래", "BTS"),
        ("드레이크", "Drake"),
        ("마룬 5 노래", "Maroon 5"),  # the number typed beside the Hangul is part of the name
    ],
)
def test_hangul_artist_names_find_the_artist(engine, query: str, artist: str) -> None:  # noqa: ANN001
    ranked, titles, reasons = search(engine, query, limit=1)
    assert titles[0].startswith(f"{artist} - ")
    assert reasons[0].startswith(f"by {artist} (")


def test_a_bpm_bound_is_a_hard_filter_and_over_is_not_rock(engine) -> None:  # noqa: ANN001
    ranked, titles, reasons = search(engine, "fast songs for running over 160 bpm", limit=5)
    index = engine[0]
    assert ranked.intent.ranges == {"tempo": (160.0, None)}
    assert "rock" not in ranked.intent.genres
    passing = [m for m in ranked.matches if not m.closest]
    assert len(passing) == 2  # Run To The Hills (172) and Paranoid (163)
    assert all(index.frame.features[m.row, 7] >= 160 for m in passing)
    assert "('over 160 bpm')" in reasons[0]
    # Too few tracks pass: the rest follow, marked and explained as outside the filter.
    assert all(m.closest for m in ranked.matches[2:])
    assert reasons[2].startswith("closest match, outside 'over 160 bpm'")


def test_a_decade_is_a_hard_filter(engine) -> None:  # noqa: ANN001
    ranked, _, reasons = search(engine, "hard rock from the 1990s", limit=5)
    index = engine[0]
    assert ranked.intent.years == (1990, 1999)
    assert {index.frame.titles[m.row] for m in ranked.matches[:2]} == {
        "Thunderstruck",
        "Enter Sandman",
    }
    passing = [m for m in ranked.matches if not m.closest]
    assert len(passing) == 3 and all(1990 <= index.years[m.row] <= 1999 for m in passing)
    assert "released 1991 ('from the 1990s')" in " ".join(reasons)


def test_like_an_artist_means_other_artists_that_sound_like_them(engine) -> None:  # noqa: ANN001
    ranked, titles, reasons = search(engine, "songs like Drake but slower", limit=3)
    assert ranked.intent.similar_to == "Drake"
    assert not any(t.startswith("Drake - ") for t in titles)
    assert titles[0] == "Kendrick Lamar - Money Trees"  # hip hop like Drake's, and slow
    assert "like Drake: hip hop too" in reasons[0] and "low tempo 72 BPM ('slower')" in reasons[0]


def test_an_artist_not_in_the_catalog_says_nothing_matched(engine) -> None:  # noqa: ANN001
    ranked, _, reasons = search(engine, "아이유", limit=3)
    assert all(m.closest for m in ranked.matches)
    assert all(r.startswith("nothing matched '아이유'; closest by description:") for r in reasons)
    assert not any("described like your query" in r for r in reasons)


def test_a_typed_name_embeds_only_the_query_and_a_description_its_spans(engine) -> None:  # noqa: ANN001
    index, understanding, _ = engine
    assert embed_texts(understanding, prepare("Money Trees Kendrick Lamar", index)) == [
        "Money Trees Kendrick Lamar"
    ]
    described = embed_texts(understanding, prepare("sad slow songs for a rainy day", index))
    assert described[0] == "sad slow songs for a rainy day" and len(described) > 1


def test_like_an_artist_keeps_the_artist_when_the_query_also_asks_for_them(engine) -> None:  # noqa: ANN001
    ranked, titles, _ = search(engine, "Drake and songs like Drake", limit=5)
    assert ranked.intent.similar_to == "Drake" and ranked.intent.artist == "Drake"
    assert titles[0].startswith("Drake - ")


@pytest.mark.parametrize(
    "query", ["Shape of You", "songs over 150 bpm from the 2010s", "songs like Drake", "아이유"]
)
def test_the_rendered_answer_is_what_the_response_schema_gives(engine, query: str) -> None:  # noqa: ANN001
    ranked, _, reasons = search(engine, query)
    best = max(m.score for m in ranked.matches)
    answer = orjson.loads(
        body(
            Result(engine[0], ranked.intent, ranked.matches, reasons, best=best),
            query=query,
            provider="offline",
            model="m",
        )
    )
    assert len(answer["items"]) == len(ranked.matches) > 0
    assert answer["items"][0]["audio_features"] and answer["items"][0]["reason"] == reasons[0]
    assert SearchResponse.model_validate(answer).model_dump(mode="json") == answer


def test_a_tracks_shown_fields_are_kept_per_snapshot_up_to_the_bound(engine, monkeypatch) -> None:  # noqa: ANN001
    ranked, _, reasons = search(engine, "songs over 150 bpm from the 2010s")
    index = engine[0]
    index.shown.clear()
    monkeypatch.setattr(render, "SHOWN_ROWS", 3)
    result = Result(index, ranked.intent, ranked.matches, reasons, best=1.0)

    def answer() -> list[dict]:
        return orjson.loads(body(result, query="q", provider="offline", model="m"))["items"]

    first = answer()
    assert len(ranked.matches) > 3 and len(index.shown) == 3  # the bound holds
    assert set(index.shown) == {m.row for m in ranked.matches[:3]}
    second = answer()  # three tracks' fields from the cache, the others built again
    assert second == first
    for item, match in zip(first, ranked.matches, strict=True):
        assert item["track_id"] == index.frame.track_ids[match.row]
        assert item["title"] == (index.frame.titles[match.row] or None)
        assert item["reason"] and item["matched"] == list(match.matched)


def test_like_artist_lifts_are_kept_per_snapshot_oldest_out_first(engine, monkeypatch) -> None:  # noqa: ANN001
    index = engine[0]
    index.similar_lifts.clear()
    artists = sorted(set(index.frame.artists))[:3]
    first = like_artist(index, artists[0])
    assert like_artist(index, artists[0]) is first  # computed once
    again = query_module._like_artist(index, artists[0])
    assert np.array_equal(first.sound, again.sound)
    assert np.array_equal(first.centroid.vector, again.centroid.vector)
    assert not first.sound.flags.writeable  # a caller adding to it would change later queries
    monkeypatch.setattr(query_module, "LIFT_CACHE_BYTES", 2 * first.nbytes)
    like_artist(index, artists[1])
    like_artist(index, artists[2])
    assert list(index.similar_lifts) == artists[1:]
