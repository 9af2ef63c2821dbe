"""Synthetic catalogs and users of any size, drawn from the demo data's distributions.

`musicspace generate --tracks 1000000 --users 100000 --out DIR` writes three files the
importer reads (`musicspace import catalog|playlists|interactions`). The same arguments and
seed give the same bytes. How each part is drawn:

- artists: each synthetic artist copies one demo artist, chosen at random, as its template,
  so the number of tracks per artist follows the demo's (most artists have one or two tracks,
  a few have over a hundred) and an artist keeps its genre and subgenre mix;
- tracks: one per track of the template artist, taking that track's genre, subgenre, release
  date and its nine audio features with small noise (a resampling of the real joint
  distribution of the nine features, conditioned on the subgenre and the artist); a track whose
  template has no features has none (10% in the demo), popularity is the template's +- noise;
- names: titles, artists and albums are made of words drawn by their frequency in the demo's
  titles, artists and albums (with as many words as the template's), unique per artist;
- users: a library size drawn from the demo playlists' sizes; the library draws its
  subgenres from a demo playlist's subgenre mix and, within a subgenre, tracks weighted by
  popularity + 1;
- interactions (plays, likes, skips), which the demo does not have: 80% on the user's library
  and 20% on other tracks of the same subgenres; plays log-normal with Last.fm's spread (the
  standard deviation of log play counts in hetrec2011 user_artists is 1.53; its median of 260
  plays per artist is divided over ~20 tracks: median 13), likes 15%, dislikes 3%, skips
  Poisson with mean 0.3 (2 for a disliked track), last played within the two years before
  2026-01-01.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicspace_cli.demo_data import DEMO_CATALOG, DEMO_PLAYLISTS
from musicspace_shared.features import FEATURE_RANGES, FEATURES

INTERACTION_HEADER = (
    "user_ref",
    "track_id",
    "play_count",
    "like_score",
    "skip_count",
    "last_played_at",
)
ID_ALPHABET = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
# Noise on the resampled features, as a fraction of each feature's spread in the demo.
FEATURE_NOISE = 0.05
PLAYS_MEDIAN, PLAYS_LOG_STD = 13.0, 1.53
LIKE_SHARE, DISLIKE_SHARE = 0.15, 0.03
LIBRARY_SHARE = 0.8
PLAYED_UNTIL = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Sizes:
    tracks: int
    users: int
    interactions: int
    seed: int = 0


class Demo:
    """The demo data, as arrays the generator samples from."""

    def __init__(self, catalog: Path = DEMO_CATALOG, playlists: Path = DEMO_PLAYLISTS) -> None:
        frame = pd.read_csv(catalog, dtype={"track_album_release_date": str}, keep_default_na=True)
        frame = frame.sort_values(["track_artist", "track_id"], kind="stable").reset_index(
            drop=True
        )
        self.frame = frame
        artists = frame["track_artist"].fillna("").to_numpy()
        self.artist_start = np.flatnonzero(np.r_[True, artists[1:] != artists[:-1]])
        self.artist_count = np.diff(np.r_[self.artist_start, len(frame)])
        self.features = frame[list(FEATURES)].to_numpy(dtype=np.float64)
        self.feature_std = np.nanstd(self.features, axis=0)
        self.subgenres = frame["subgenre"].fillna("").to_numpy()
        self.title_words = _vocabulary(frame["track_name"])
        self.artist_words = _vocabulary(frame["track_artist"])
        self.album_words = _vocabulary(frame["track_album_name"])
        self.title_lengths = _word_counts(frame["track_name"])
        self.artist_lengths = _word_counts(artists)
        self.album_lengths = _word_counts(frame["track_album_name"])
        lists = pd.read_csv(playlists, usecols=["playlist_id", "track_id"])
        sub_of = dict(zip(frame["track_id"], self.subgenres, strict=True))
        lists["subgenre"] = lists["track_id"].map(sub_of).fillna("")
        self.playlist_sizes = lists.groupby("playlist_id").size().to_numpy()
        # Each playlist's subgenre mix, as lists of subgenre names (with repeats).
        self.playlist_mixes = [
            group.to_numpy() for _, group in lists.groupby("playlist_id")["subgenre"]
        ]


_BRACKETS = str.maketrans("", "", '()[]{}"')


def _words(text: Any) -> list[str]:
    """The words of a name, without brackets and quotes (a drawn word stands alone)."""
    return text.translate(_BRACKETS).split() if isinstance(text, str) else []


def _vocabulary(texts: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    counts: dict[str, int] = {}
    for text in texts:
        for word in _words(text):
            counts[word] = counts.get(word, 0) + 1
    words = np.array(sorted(counts))
    weights = np.array([counts[w] for w in words], dtype=np.float64)
    return words, np.cumsum(weights) / weights.sum()


def _word_counts(texts: Iterable[Any]) -> np.ndarray:
    return np.array([max(1, min(len(_words(t)), 8)) for t in texts], dtype=np.int64)


def _names(
    rng: np.random.Generator, vocabulary: tuple[np.ndarray, np.ndarray], lengths: np.ndarray
) -> list[str]:
    """One name per length, of that many words drawn by frequency."""
    words, cumulative = vocabulary
    picks = words[np.searchsorted(cumulative, rng.random(int(lengths.sum())), side="right")]
    ends = np.cumsum(lengths)
    starts = ends - lengths
    return [" ".join(picks[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]


def _unique(names: list[str]) -> list[str]:
    """Names made unique by a numeral on the repeats ("Blue Moon", "Blue Moon II", ...)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        n = seen.get(name, 0) + 1
        seen[name] = n
        out.append(name if n == 1 else f"{name} {_roman(n)}")
    return out


def _roman(n: int) -> str:
    digits = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"))
    digits += ((50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))
    out = ""
    for value, letters in digits:
        while n >= value:
            out, n = out + letters, n - value
    return out


def _ids(rng: np.random.Generator, count: int, length: int = 22) -> np.ndarray:
    codes = rng.integers(0, len(ID_ALPHABET), size=(count, length))
    return ID_ALPHABET[codes].view(f"<U{length}").ravel()


def _round_features(values: np.ndarray) -> np.ndarray:
    """The catalog's precision: 3 significant digits, tempo and loudness 3 decimals."""
    out = values.copy()
    unit = out[:, :7]
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 10.0 ** (2 - np.floor(np.log10(np.abs(unit))))
    scale[~np.isfinite(scale)] = 1.0
    out[:, :7] = np.round(unit * scale) / scale
    out[:, 7:] = np.round(out[:, 7:], 3)
    return out


@dataclass
class Catalog:
    track_ids: np.ndarray
    template_rows: np.ndarray  # the demo row each track copies
    artist_of: np.ndarray  # synthetic artist index per track
    subgenres: np.ndarray
    popularity: np.ndarray


def _catalog(demo: Demo, rng: np.random.Generator, tracks: int) -> tuple[Catalog, pd.DataFrame]:
    """The synthetic catalog: its arrays (for the users) and its file's rows."""
    mean = demo.artist_count.mean()
    templates = rng.integers(0, len(demo.artist_count), size=int(tracks / mean * 1.2) + 16)
    counts = demo.artist_count[templates]
    while counts.sum() < tracks:  # rare: draw more artists
        more = rng.integers(0, len(demo.artist_count), size=len(templates))
        templates, counts = np.r_[templates, more], np.r_[counts, demo.artist_count[more]]
    artists = int(np.searchsorted(np.cumsum(counts), tracks)) + 1
    templates, counts = templates[:artists], counts[:artists]
    artist_of = np.repeat(np.arange(artists), counts)[:tracks]
    offsets = np.arange(len(artist_of)) - np.repeat(np.cumsum(counts) - counts, counts)[:tracks]
    rows = demo.artist_start[templates][artist_of] + offsets
    frame = demo.frame

    features = demo.features[rows] + rng.normal(size=(tracks, len(FEATURES))) * (
        FEATURE_NOISE * demo.feature_std
    )
    low = np.array([FEATURE_RANGES[f][0] for f in FEATURES])
    high = np.array([FEATURE_RANGES[f][1] for f in FEATURES])
    features = _round_features(np.clip(features, low, high))
    base = frame["track_popularity"].fillna(0).to_numpy()[rows]
    popularity = np.clip(np.round(base + rng.normal(0, 5, tracks)), 0, 100).astype(np.int64)

    artist_names = _unique(_names(rng, demo.artist_words, demo.artist_lengths[templates]))
    titles = _names(rng, demo.title_words, demo.title_lengths[rows])
    # An album per (synthetic artist, template album): a name and an id of its own.
    album_keys = pd.factorize(
        pd.Series(artist_of).astype(str)
        + "|"
        + frame["track_album_id"].astype(str).to_numpy()[rows]
    )[0]
    first_of_album = np.unique(album_keys, return_index=True)[1]
    album_names = np.array(
        _names(rng, demo.album_words, demo.album_lengths[rows[first_of_album]]), dtype=object
    )
    album_ids = _ids(rng, len(first_of_album))
    track_ids = _ids(rng, tracks)
    dates = frame["track_album_release_date"].fillna("").to_numpy()[rows]
    genres = frame["genre"].fillna("").to_numpy()[rows]
    subgenres = demo.subgenres[rows]

    table = pd.DataFrame(
        {
            "track_id": track_ids,
            "track_name": titles,
            "track_artist": np.array(artist_names, dtype=object)[artist_of],
            "track_popularity": popularity,
            "track_album_id": album_ids[album_keys],
            "track_album_name": album_names[album_keys],
            "track_album_release_date": dates,
            "genre": genres,
            "subgenre": subgenres,
        }
    )
    for position, name in enumerate(FEATURES):
        table[name] = features[:, position]
    missing = np.isnan(features).any(axis=1)
    table.loc[missing, list(FEATURES)] = np.nan  # all nine or none
    catalog = Catalog(track_ids, rows, artist_of, subgenres, popularity)
    return catalog, table


class _SubgenrePicker:
    """Tracks of a subgenre, drawn with weight popularity + 1."""

    def __init__(self, catalog: Catalog) -> None:
        self.members: dict[str, np.ndarray] = {}
        self.cumulative: dict[str, np.ndarray] = {}
        order = np.argsort(catalog.subgenres, kind="stable")
        names, starts = np.unique(catalog.subgenres[order], return_index=True)
        for name, start, end in zip(names, starts, np.r_[starts[1:], len(order)], strict=True):
            members = order[start:end]
            weights = catalog.popularity[members].astype(np.float64) + 1.0
            self.members[name] = members
            self.cumulative[name] = np.cumsum(weights) / weights.sum()
        self.names = names

    def pick(self, rng: np.random.Generator, subgenres: np.ndarray) -> np.ndarray:
        """One track index per requested subgenre (unknown subgenres: any subgenre)."""
        out = np.empty(len(subgenres), dtype=np.int64)
        known = np.isin(subgenres, self.names)
        subgenres = np.where(known, subgenres, rng.choice(self.names, size=len(subgenres)))
        for name in np.unique(subgenres):
            where = np.flatnonzero(subgenres == name)
            draws = np.searchsorted(self.cumulative[name], rng.random(len(where)), side="right")
            out[where] = self.members[name][np.minimum(draws, len(self.members[name]) - 1)]
        return out


def _user_tracks(
    demo: Demo, rng: np.random.Generator, picker: _SubgenrePicker, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(user index, track index) pairs, one per draw (duplicates possible), by user."""
    mixes = rng.integers(0, len(demo.playlist_mixes), size=len(sizes))
    users = np.repeat(np.arange(len(sizes)), sizes)
    wanted = np.empty(len(users), dtype=object)
    start = 0
    for size, mix in zip(sizes.tolist(), mixes.tolist(), strict=True):
        wanted[start : start + size] = rng.choice(demo.playlist_mixes[mix], size=size)
        start += size
    return users, picker.pick(rng, wanted.astype(str))


def _dedupe(users: np.ndarray, tracks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = users.astype(np.int64) * (int(tracks.max(initial=0)) + 1) + tracks
    _, first = np.unique(keys, return_index=True)
    first.sort()
    return users[first], tracks[first]


def _write(path: Path, table: pd.DataFrame) -> int:
    # mtime=0: the same rows give the same bytes (gzip otherwise stamps the time).
    table.to_csv(
        path, index=False, na_rep="", compression={"method": "gzip", "mtime": 0, "compresslevel": 6}
    )
    return len(table)


def generate(out: Path, sizes: Sizes, demo: Demo | None = None) -> dict[str, Any]:
    """Write catalog.csv.gz, playlists.csv.gz and interactions.csv.gz to `out`; a summary."""
    if sizes.tracks < 1 or sizes.users < 0 or sizes.interactions < 0:
        raise ValueError("tracks must be at least 1; users and interactions not negative")
    started = time.perf_counter()
    demo = demo or Demo()
    rng = np.random.default_rng(sizes.seed)
    out.mkdir(parents=True, exist_ok=True)
    catalog, table = _catalog(demo, rng, sizes.tracks)
    files = {"catalog": _write(out / "catalog.csv.gz", table)}

    picker = _SubgenrePicker(catalog)
    library_sizes = rng.choice(demo.playlist_sizes, size=sizes.users)
    users, tracks = _dedupe(*_user_tracks(demo, rng, picker, library_sizes))
    refs = np.char.add("gen-user-", np.char.zfill(np.arange(1, sizes.users + 1).astype(str), 7))
    ids = catalog.track_ids
    names = np.char.add("Generated mix ", (np.arange(sizes.users) + 1).astype(str))
    files["playlists"] = _write(
        out / "playlists.csv.gz",
        pd.DataFrame(
            {"playlist_id": refs[users], "playlist_name": names[users], "track_id": ids[tracks]}
        ),
    )
    files["interactions"] = _write(
        out / "interactions.csv.gz", _interactions(rng, picker, catalog, users, tracks, refs, sizes)
    )
    return {
        "out": str(out),
        "seed": sizes.seed,
        "rows": files,
        "artists": int(catalog.artist_of.max()) + 1,
        "without_features": float(
            np.isnan(demo.features[catalog.template_rows]).any(axis=1).mean()
        ),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _interactions(
    rng: np.random.Generator,
    picker: _SubgenrePicker,
    catalog: Catalog,
    users: np.ndarray,
    tracks: np.ndarray,
    refs: np.ndarray,
    sizes: Sizes,
) -> pd.DataFrame:
    if sizes.users == 0 or sizes.interactions == 0 or len(users) == 0:
        return pd.DataFrame(columns=list(INTERACTION_HEADER))
    # Each user's share of the interactions follows their library size: up to LIBRARY_SHARE of
    # it on distinct library tracks, the rest on tracks of the subgenre of a random library
    # track of theirs (a repeat of one already drawn is dropped).
    per_user = np.bincount(users, minlength=sizes.users)
    wanted = np.floor(sizes.interactions * per_user / len(users) + rng.random(sizes.users))
    on_library = np.minimum(per_user, np.round(wanted * LIBRARY_SHARE)).astype(np.int64)
    order = np.lexsort((rng.random(len(users)), users))  # library rows shuffled within users
    rank = np.arange(len(users)) - np.repeat(np.cumsum(per_user) - per_user, per_user)
    kept = order[rank < on_library[users[order]]]
    # Drawn half as many again as needed: repeats are dropped, then each user keeps `wanted`.
    extra = np.ceil((wanted - on_library) * 1.5).astype(np.int64)
    starts = np.cumsum(per_user) - per_user
    who_extra = np.repeat(np.arange(sizes.users), extra)
    seeds = starts[who_extra] + (rng.random(len(who_extra)) * per_user[who_extra]).astype(np.int64)
    what_extra = picker.pick(rng, catalog.subgenres[tracks[seeds]])
    who, what = _dedupe(np.r_[users[kept], who_extra], np.r_[tracks[kept], what_extra])
    by_user = np.argsort(who, kind="stable")  # library rows first within each user
    firsts = np.searchsorted(who[by_user], who[by_user])
    keep = by_user[np.arange(len(who)) - firsts < wanted[who[by_user]]]
    keep.sort()
    who, what = who[keep], what[keep]
    n = len(who)
    like = np.zeros(n, dtype=np.int64)
    draw = rng.random(n)
    like[draw < LIKE_SHARE] = 1
    like[(draw >= LIKE_SHARE) & (draw < LIKE_SHARE + DISLIKE_SHARE)] = -1
    plays = np.maximum(1, np.round(rng.lognormal(np.log(PLAYS_MEDIAN), PLAYS_LOG_STD, n)))
    skips = rng.poisson(np.where(like < 0, 2.0, 0.3))
    seconds_before = rng.integers(0, 2 * 365 * 86400, size=n)
    played = np.datetime64(PLAYED_UNTIL.replace(tzinfo=None), "s") - seconds_before.astype(
        "timedelta64[s]"
    )
    return pd.DataFrame(
        {
            "user_ref": refs[who],
            "track_id": catalog.track_ids[what],
            "play_count": plays.astype(np.int64),
            "like_score": like,
            "skip_count": skips,
            "last_played_at": np.char.add(np.datetime_as_string(played, unit="s"), "Z"),
        }
    )
