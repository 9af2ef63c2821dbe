"""Artist names typed in Hangul are read by sound, not looked up in a list."""

from __future__ import annotations

import pytest

from musicspace_llm.crossscript import ArtistNames, hangul_key, latin_key, skeleton
from musicspace_shared.packing import pack, unpack

# Each real artist has several tracks (a loose sound match needs that); the rest are decoys
# that sound like ordinary Korean words.
CATALOG = [
    "Drake",
    "Queen",
    "Eminem",
    "BTS",
    "Ariana Grande",
    "Maroon 5",
    "The Weeknd",
    "Shakira",
    "2Pac",
] * 6 + ["Treyy G", "Noel", "Fainal", "Nelly"]


@pytest.fixture(scope="module")
def names() -> ArtistNames:
    return ArtistNames(CATALOG)


@pytest.mark.parametrize(
    ("hangul", "artist"),
    [
        ("드레이크", "Drake"),
        ("퀸", "Queen"),
        ("에미넴", "Eminem"),
        ("방탄소년단", "BTS"),  # by the initials of its syllables
        ("아리아나 그란데", "Ariana Grande"),
        ("아리아나그란데", "Ariana Grande"),
        ("마룬 파이브", "Maroon 5"),
        ("마룬 5", "Maroon 5"),  # the number as typed: said in English
        ("투팍", "2Pac"),  # a number inside the name
        ("위켄드", "The Weeknd"),
        ("샤키라의", "Shakira"),  # with a particle attached
    ],
)
def test_hangul_names_find_the_catalog_artist(names: ArtistNames, hangul: str, artist: str) -> None:
    guess = names.guess(hangul)
    assert guess is not None and guess.artist == artist


@pytest.mark.parametrize("word", ["아이유", "노래", "비오는날", "잔잔한", "기분"])
def test_ordinary_words_and_unknown_artists_name_nobody(names: ArtistNames, word: str) -> None:
    assert names.guess(word) is None


def test_both_scripts_share_one_skeleton() -> None:
    assert skeleton(hangul_key("드레이크")) == skeleton(latin_key("Drake")) == "tlk"
    assert skeleton(hangul_key("콜드플레이")) == skeleton(latin_key("Coldplay"))


def test_a_guess_is_worked_out_once_per_text(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ArtistNames(CATALOG)
    first = names.guess("드레이크")
    monkeypatch.setattr(names, "_guess", lambda hangul: pytest.fail("guessed again"))
    assert names.guess("드레이크") == first


def test_names_from_a_snapshot_guess_as_the_ones_built(names: ArtistNames) -> None:
    loaded = unpack(pack(ArtistNames(CATALOG * 100)))  # long enough for packed blocks
    for hangul in ["드레이크", "방탄소년단", "위켄드", "투팍", "아이유", "잔잔한"]:
        assert loaded.guess(hangul) == names.guess(hangul)
