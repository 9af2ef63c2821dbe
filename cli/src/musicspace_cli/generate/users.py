"""Users' libraries and interactions, made by chunks of users.

Every draw of user u is at a counter of its own (u * USER_STRIDE + the draw's position), so a
user's rows do not depend on the chunk they are made in; the rows are written by user, each
user's library rows first. Across chunks the generator keeps the catalog's per-track subgenre
codes and popularity weights (TrackPicker) and the sum of all drawn library sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from scipy.stats import poisson

from musicspace_cli.generate.catalog import track_ids
from musicspace_cli.generate.demo import Demo
from musicspace_cli.generate.draws import Draws

PLAYLIST_COLUMNS = ("playlist_id", "playlist_name", "track_id")
INTERACTION_COLUMNS = (
    "user_ref",
    "track_id",
    "play_count",
    "like_score",
    "skip_count",
    "last_played_at",
)
USER_STRIDE = 1 << 32  # counters per user and stream
PLAYS_MEDIAN, PLAYS_LOG_STD = 13.0, 1.53
LIKE_SHARE, DISLIKE_SHARE = 0.15, 0.03
SKIPS_MEAN, SKIPS_MEAN_DISLIKED = 0.3, 2.0
LIBRARY_SHARE = 0.8
PLAYED_UNTIL = datetime(2026, 1, 1, tzinfo=UTC)
PLAYED_WITHIN_S = 2 * 365 * 86400


class TrackPicker:
    """Tracks of a subgenre, drawn with weight popularity + 1: the tracks sorted by subgenre
    (4 bytes a track) and their cumulative weights (8 bytes)."""

    def __init__(self, subgenre_codes: np.ndarray, popularity: np.ndarray, codes: int) -> None:
        self.subgenre_codes = subgenre_codes
        order = np.argsort(subgenre_codes, kind="stable")
        self.members = order.astype(np.int32 if len(order) < 2**31 else np.int64)
        del order
        self.cumulative = np.cumsum(popularity[self.members].astype(np.int64) + 1)
        counts = np.bincount(subgenre_codes, minlength=codes)
        ends = np.cumsum(counts)
        self.before = np.r_[0, self.cumulative][ends - counts]  # the weight of earlier groups
        self.weight = np.r_[0, self.cumulative][ends] - self.before
        self.present = np.flatnonzero(counts)

    def pick(
        self, draws: Draws, stream: str, counters: np.ndarray, codes: np.ndarray
    ) -> np.ndarray:
        """One track index per requested subgenre code (a subgenre without tracks: any)."""
        codes = np.asarray(codes, dtype=np.int64)
        unknown = self.weight[codes] == 0
        if unknown.any():
            codes = codes.copy()
            anyone = draws.below(stream + " (any subgenre)", counters[unknown], len(self.present))
            codes[unknown] = self.present[anyone]
        targets = self.before[codes] + draws.below(stream, counters, self.weight[codes])
        return self.members[np.searchsorted(self.cumulative, targets, side="right")]


def library_sizes(demo: Demo, draws: Draws, users: np.ndarray) -> np.ndarray:
    """How many tracks each user's library draws (repeats are dropped after)."""
    return demo.playlist_sizes[draws.below("library size", users, len(demo.playlist_sizes))]


def _positions(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., counts[0] - 1, 0, 1, ..., counts[1] - 1, ..."""
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


def _first_of_each(users: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """Positions of each (user, track) pair's first row, in order."""
    keys = users.astype(np.int64) * (int(tracks.max(initial=0)) + 1) + tracks
    first = np.unique(keys, return_index=True)[1]
    first.sort()
    return first


@dataclass(frozen=True)
class UserChunk:
    playlists: pd.DataFrame
    interactions: pd.DataFrame


class Users:
    """Users `first` .. `first + count - 1` of a data set: their libraries and interactions."""

    def __init__(
        self, demo: Demo, draws: Draws, picker: TrackPicker, interactions: int, drawn: int
    ) -> None:
        self.demo, self.draws, self.picker = demo, draws, picker
        # A user's share of the interactions is their library's share of all drawn libraries.
        self.per_drawn = interactions / drawn if drawn else 0.0
        cdf = np.arange(64)
        self._skip_cdfs = {m: poisson.cdf(cdf, m) for m in (SKIPS_MEAN, SKIPS_MEAN_DISLIKED)}

    def chunk(self, first: int, count: int) -> UserChunk:
        demo, draws = self.demo, self.draws
        users = np.arange(first, first + count)
        sizes = library_sizes(demo, draws, users)
        mixes = draws.below("library mix", users, len(demo.playlist_sizes))
        owner = np.repeat(np.arange(count), sizes)
        counters = users[owner] * USER_STRIDE + _positions(sizes)
        mix = mixes[owner]
        drawn = demo.mix_starts[mix] + draws.below(
            "library subgenre", counters, demo.playlist_sizes[mix]
        )
        tracks = self.picker.pick(draws, "library track", counters, demo.mix_codes[drawn])
        kept = _first_of_each(owner, tracks)
        owner, tracks, counters = owner[kept], tracks[kept], counters[kept]
        refs = _refs(users)
        playlists = pd.DataFrame(
            {
                "playlist_id": refs[owner],
                "playlist_name": np.char.add("Generated mix ", (users + 1).astype(str))[owner],
                "track_id": track_ids(draws, tracks),
            }
        )
        interactions = self._interactions(users, sizes, owner, tracks, counters, refs)
        return UserChunk(playlists, interactions)

    def _interactions(
        self,
        users: np.ndarray,
        sizes: np.ndarray,
        owner: np.ndarray,
        tracks: np.ndarray,
        counters: np.ndarray,
        refs: np.ndarray,
    ) -> pd.DataFrame:
        draws, count = self.draws, len(users)
        # Up to LIBRARY_SHARE of a user's interactions on distinct library tracks (in a random
        # order), the rest on tracks of the subgenre of a random library track of theirs (a
        # repeat of one already drawn is dropped).
        wanted = np.floor(self.per_drawn * sizes + draws.uniform("interaction share", users))
        per_user = np.bincount(owner, minlength=count)
        on_library = np.minimum(per_user, np.round(wanted * LIBRARY_SHARE)).astype(np.int64)
        order = np.lexsort((draws.uniform("library order", counters), owner))
        kept = order[_positions(per_user) < on_library[owner[order]]]
        # Drawn half as many again as needed: repeats are dropped, then each user keeps `wanted`.
        extra = np.ceil((wanted - on_library) * 1.5).astype(np.int64)
        who_extra = np.repeat(np.arange(count), extra)
        extra_counters = users[who_extra] * USER_STRIDE + _positions(extra)
        starts = np.cumsum(per_user) - per_user
        seeds = starts[who_extra] + draws.below("seed track", extra_counters, per_user[who_extra])
        seed_codes = self.picker.subgenre_codes[tracks[seeds]]
        what_extra = self.picker.pick(draws, "extra track", extra_counters, seed_codes)
        who, what = np.r_[owner[kept], who_extra], np.r_[tracks[kept], what_extra]
        first = _first_of_each(who, what)
        who, what = who[first], what[first]
        by_user = np.argsort(who, kind="stable")  # library rows first within each user
        rank = _positions(np.bincount(who, minlength=count))
        keep = by_user[rank < wanted[who[by_user]]]
        who, what = who[keep], what[keep]
        row_counters = users[who] * USER_STRIDE + _positions(np.bincount(who, minlength=count))

        like = np.zeros(len(who), dtype=np.int64)
        draw = draws.uniform("like", row_counters)
        like[draw < LIKE_SHARE] = 1
        like[(draw >= LIKE_SHARE) & (draw < LIKE_SHARE + DISLIKE_SHARE)] = -1
        log_plays = np.log(PLAYS_MEDIAN) + PLAYS_LOG_STD * draws.normal("plays", row_counters)
        plays = np.maximum(1, np.round(np.exp(log_plays))).astype(np.int64)
        skips = np.empty(len(who), dtype=np.int64)
        skip_draw = draws.uniform("skips", row_counters)
        for mean, disliked in ((SKIPS_MEAN, False), (SKIPS_MEAN_DISLIKED, True)):
            rows = (like < 0) == disliked
            skips[rows] = np.searchsorted(self._skip_cdfs[mean], skip_draw[rows], side="right")
        seconds_before = draws.below("played", row_counters, PLAYED_WITHIN_S)
        played = np.datetime64(PLAYED_UNTIL.replace(tzinfo=None), "s") - seconds_before.astype(
            "timedelta64[s]"
        )
        return pd.DataFrame(
            {
                "user_ref": refs[who],
                "track_id": track_ids(draws, tracks=what),
                "play_count": plays,
                "like_score": like,
                "skip_count": skips,
                "last_played_at": np.char.add(np.datetime_as_string(played, unit="s"), "Z"),
            }
        )


def _refs(users: np.ndarray) -> np.ndarray:
    return np.char.add("gen-user-", np.char.zfill((users + 1).astype(str), 7))
