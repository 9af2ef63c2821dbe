"""The lexical index: what people type into a search box finds the catalog's names."""

from __future__ import annotations

import numpy as np
import pytest

from musicspace_llm.lexical import (
    LexicalIndex,
    LexicalMatch,
    NearNames,
    core_title,
    edit_distance,
    fold,
    tokens,
)

TITLES = ["Walk Me Home", "m.A.A.d city", "Loving Is Easy", "Captain Save a Hoe", "Reggaetón Lento"]
ARTISTS = ["P!nk", "Kendrick Lamar", "Rex Orange County", "E-40", "CNCO"]
ALBUMS = ["Hurts 2B Human", "good kid, m.A.A.d city", "Pony", "In A Major Way", "Primera Cita"]


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex(TITLES, ARTISTS, ALBUMS)


@pytest.mark.parametrize(
    ("typed", "folded"),
    [
        ("P!nk", ["pink"]),
        ("m.A.A.d city", ["maad", "city"]),
        ("m a a d city", ["maad", "city"]),
        ("Reggaetón", ["reggaeton"]),
        ("A$AP Rocky", ["asap", "rocky"]),
        ("Don't Stop", ["dont", "stop"]),
        ("Simon & Garfunkel", ["simon", "and", "garfunkel"]),
        ("방탄소년단 노래", ["방탄소년단", "노래"]),  # Hangul syllables survive accent folding
    ],
)
def test_tokens_fold_case_accents_and_punctuation(typed: str, folded: list[str]) -> None:
    assert tokens(typed) == folded


def test_fold_keeps_hangul_syllables_whole() -> None:
    assert fold("드레이크") == "드레이크"


def test_core_title_drops_the_version_suffix() -> None:
    assert core_title("Someone You Loved - Future Humans Remix") == "Someone You Loved"
    assert core_title("Lady (feat. X)") == "Lady"


def test_edit_distance_counts_a_swap_as_one() -> None:
    assert edit_distance("lovign", "loving", 2) == 1
    assert edit_distance("abc", "xyz", 1) == 2  # over the limit: limit + 1


@pytest.mark.parametrize(
    ("query", "row"),
    [
        ("walk me home p!nk", 0),
        ("Walk Me Home Pink", 0),
        ("kendrick lamar m a a d city", 1),
        ("Lovign Is Easy Rex Orange County", 2),  # a swapped pair of letters
        ("e40 captain save a hoe", 3),  # "E-40" typed joined
        ("reggaeton lento cnco", 4),  # no accent typed
    ],
)
def test_the_typed_track_covers_the_whole_query(index: LexicalIndex, query: str, row: int) -> None:
    match = index.match(tokens(query))
    coverage = _dense(index, match, match.coverage)
    assert int(np.argmax(coverage)) == row
    assert coverage[row] >= 0.9
    assert _dense(index, match, match.title_complete)[row]
    assert _dense(index, match, match.artist_complete)[row]


def test_a_word_the_catalog_lacks_lowers_coverage(index: LexicalIndex) -> None:
    match = index.match(tokens("walk me home wombat"))
    assert 0 < _dense(index, match, match.coverage)[0] < 0.7


def test_typos_are_not_guessed_for_short_words(index: LexicalIndex) -> None:
    assert index.spellings("cty") == []
    assert [index._words[i] for i, _ in index.spellings("citty")] == ["city"]


@pytest.mark.parametrize(
    "query",
    [
        "walk me home",  # a whole title
        "walk me home pink",  # title and artist
        "kendrick lamar",  # a whole artist
        "e40",  # a compound typed joined
        "lovign is easy",  # a typo: matched, but at a discount
        "pony",  # an album word only: weighs less than a title
        "walk me home wombat",  # a word no track has
        "home city",  # words of two different tracks
    ],
)
def test_holds_all_says_whether_some_track_covers_the_whole_query(
    index: LexicalIndex, query: str
) -> None:
    """The quick check agrees with the full match it stands in for (the known-item test)."""
    words = tokens(query)
    assert index.holds_all(words) == (index.match(words).best() >= 1.0)


def test_request_words_weigh_nothing_but_still_complete_a_title(index: LexicalIndex) -> None:
    words = tokens("walk me home")
    match = index.match(words, [1.0, 0.0, 1.0])  # "me" asked for nothing
    assert _dense(index, match, match.coverage)[0] == 1.0
    assert _dense(index, match, match.title_complete)[0]  # ... yet the title was typed whole


@pytest.mark.parametrize(
    ("typed", "row", "with_artist"),
    [
        ("Hoe with You", 0, False),  # "home" typed as another real word
        ("en tus lanes", 2, False),
        ("Note-dame", 3, False),
        ("david bisbal en tus lanes", 2, True),
        ("en tus lanes david bisbal", 2, True),
    ],
)
def test_near_names_finds_a_name_whose_typo_made_another_word(
    typed: str, row: int, with_artist: bool
) -> None:
    index = LexicalIndex(
        ["Home with You", "Hoe Je Bent", "En Tus Planes - Live", "Notre-dame"],
        ["Madison Beer", "Broederliefde", "David Bisbal", "Triomphe"],
        ["", "", "", ""],
    )
    near = index.near_names(tokens(typed))
    assert near.rows.tolist() == [row]
    assert near.with_artist.tolist() == [with_artist]
    assert near.distances.tolist() == [1]


def test_near_names_wants_more_than_one_word_and_at_most_the_allowed_edits(index) -> None:  # noqa: ANN001
    assert not len(index.near_names(tokens("hoe")).rows)  # one word: the word-level typo table
    assert not len(index.near_names(tokens("walk my phone")).rows)  # two edits, short text
    assert index.near_names(tokens("walk me hone")).rows.tolist() == [0]


def _dense(index: LexicalIndex, match: LexicalMatch, values: np.ndarray) -> np.ndarray:
    """One of the match's arrays for every track (0 / False where no word matched)."""
    out = np.zeros(len(index), dtype=values.dtype)
    out[match.rows] = values
    return out


def test_a_match_reads_only_the_tracks_holding_a_word(index: LexicalIndex) -> None:
    match = index.match(tokens("pink wombat"))
    holding = [row for row in range(len(index)) if "pink" in tokens(index.artist_texts[row])]
    assert match.rows.tolist() == holding and len(holding) < len(index)
    assert index.match(tokens("wombat")).rows.tolist() == []
    assert index.match(tokens("wombat")).best() == 0.0
    assert index.match(tokens("walk me"), [0.0, 0.0]).rows.tolist() == []  # request words only


def test_a_floor_keeps_every_track_that_reaches_it_with_the_same_match() -> None:
    """Merging only the lists of the words a track needs to reach the floor loses no track
    that reaches it, and changes nothing of its match."""
    rng = np.random.default_rng(4)
    vocabulary = [f"w{i}" for i in range(60)]
    zipf = 1.0 / np.arange(1, 61)
    draw = lambda size: " ".join(rng.choice(vocabulary, size=size, p=zipf / zipf.sum()))  # noqa: E731
    n = 3000
    index = LexicalIndex(
        [draw(3) for _ in range(n)], [draw(2) for _ in range(n)], [draw(2) for _ in range(n)]
    )
    smaller = 0
    for _ in range(200):
        words = list(rng.choice(vocabulary, size=int(rng.integers(1, 7))))
        weights = list(rng.choice([0.0, 1.0, 1.0, 0.5], size=len(words)))
        full = index.match(words, weights)
        for floor in (0.3, 0.7, 0.99):
            pruned = index.match(words, weights, floor=floor)
            reaching = full.rows[full.coverage >= floor]
            assert set(reaching.tolist()) <= set(pruned.rows.tolist())
            assert len(pruned.rows) <= len(full.rows)
            smaller += len(pruned.rows) < len(full.rows)
            at = np.searchsorted(full.rows, pruned.rows)
            np.testing.assert_array_equal(pruned.coverage, full.coverage[at])
            np.testing.assert_array_equal(pruned.title_complete, full.title_complete[at])
            np.testing.assert_array_equal(pruned.artist_complete, full.artist_complete[at])
    assert smaller > 100  # the floor did leave common words' lists unmerged


def test_near_names_join_the_match_row_by_row_whatever_their_order() -> None:
    """Near names come closest first, not ascending; one outside the match joins it, one inside
    is flagged where it is, and no other track is touched."""
    match = LexicalMatch(
        rows=np.array([2, 5, 9]),
        coverage=np.array([0.5, 0.2, 0.9]),
        title_complete=np.array([False, True, False]),
        title_exact=np.array([False, True, False]),
        artist_complete=np.zeros(3, dtype=bool),
        words=["song"],
    )
    near = NearNames(
        rows=np.array([9, 3, 1]),
        distances=np.array([1.0, 1.0, 2.0]),
        with_artist=np.array([False, True, False]),
    )
    out = match.add_near(near, np.array([0.6, 0.7, 0.4]))
    assert out.rows.tolist() == [1, 2, 3, 5, 9]
    assert out.coverage.tolist() == pytest.approx([0.4, 0.5, 0.7, 0.2, 0.9])
    assert out.title_complete.tolist() == [True, False, True, True, True]
    assert out.title_exact.tolist() == [False, False, False, True, False]
    assert out.artist_complete.tolist() == [False, False, True, False, False]
    assert out.words == ["song"]
