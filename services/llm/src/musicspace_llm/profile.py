"""A user's taste from their PMS tracks, as a per-track bonus added to the search score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicspace_llm.index import TrackIndex

W_SUBGENRE = (
    0.35  # how much the user's subgenre mix moves a track (the query's subgenre weighs 1.0)
)
W_FEATURES = 0.25  # closeness to the user's mean audio profile
_UNIT_FEATURES = slice(0, 7)  # the 0..1 features; tempo and loudness say little about taste alone


@dataclass
class Profile:
    tracks: int
    subgenre_share: dict[str, float]
    mean_features: np.ndarray | None  # (7,) or None when no track has features

    def top_subgenres(self, n: int = 2) -> list[str]:
        return [s for s, _ in sorted(self.subgenre_share.items(), key=lambda kv: -kv[1])[:n]]


def build_profile(index: TrackIndex, owned: list[str]) -> Profile:
    """Subgenre shares and mean features over the user's tracks that are in the index."""
    rows = index.frame.rows(owned)
    if not len(rows):
        return Profile(0, {}, None)
    subgenres = [index.frame.subgenres[r] for r in rows if index.frame.subgenres[r]]
    share = {s: subgenres.count(s) / len(subgenres) for s in set(subgenres)} if subgenres else {}
    unit = index.unit[rows][:, _UNIT_FEATURES]
    known = unit[~np.isnan(unit).any(axis=1)]
    return Profile(len(rows), share, known.mean(axis=0) if len(known) else None)


def profile_bonus(index: TrackIndex, profile: Profile) -> np.ndarray:
    """Per-track bonus: share of the track's subgenre in the user's tracks + audio closeness."""
    bonus = np.zeros(len(index))
    if profile.subgenre_share:
        top = max(profile.subgenre_share.values())
        table = np.array([profile.subgenre_share.get(name, 0.0) / top for name in index.sub_names])
        bonus += W_SUBGENRE * table[index.sub_codes]
    if profile.mean_features is not None:
        for start in range(0, len(index), _BLOCK):
            end = min(start + _BLOCK, len(index))
            bonus[start:end] += W_FEATURES * _closeness(
                index.unit[start:end], profile.mean_features
            )
    return bonus


_BLOCK = 32_768  # rows at a time: the temporaries stay in cache (a pass over 1M rows does not)


def _closeness(unit: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """1 - 2 x the mean absolute difference over the 0..1 features, clipped to 0..1 (0 for a
    track without features); a column at a time, summed in order as NumPy's mean over a row
    of seven does."""
    distance = np.zeros(len(unit))
    part = np.empty(len(unit))
    for j, value in enumerate(mean):
        np.subtract(unit[:, _UNIT_FEATURES.start + j], value, out=part)
        distance += np.abs(part, out=part)
    distance /= len(mean)
    closeness = np.subtract(1.0, np.multiply(2.0, distance, out=distance), out=distance)
    return np.nan_to_num(closeness, nan=0.0, copy=False).clip(0.0, 1.0, out=closeness)
