"""The steps after ranking that every recommend route shares, so they mean the same everywhere.

A route ranks a candidate list of fixed depth (best first; the same inputs give the same list),
then `take_page` keeps what passes the request's filters, `exclude` and `exclude_owned`, caps
each artist at `max_per_artist` counting from the top of the list (not per page), and returns
the slice at the cursor. So pages concatenate to exactly the one long page, never overlap and
never skip while the inputs are unchanged; the list's depth bounds how far paging goes.

A route may also apply `allowed(...)` before it ranks (m1 and m3 in their candidate stage, m2
to its catalog-wide scores; llm ranks with the same filters natively), so the depth is spent on
tracks that pass the filters; the steps here then re-check them at no cost.

The cursor is urlsafe base64 of "<offset>.<check>": the check hashes the request (everything but
limit and cursor), the route and the offset, plus the ranking's version (model and catalog).
It is an integrity check, not a secret: an edited or foreign cursor is a 422. A cursor issued
before the model or catalog changed still works: the next page is read at the same offset of
the new ranking, so an item may repeat or be skipped at that boundary, once. Refusing it would
fail every client paging while enrichment writes features or while replicas catch up with a
change at different moments (each replica's version moves on its own watcher round).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from musicspace_shared.catalog import TrackFrame, label_codes
from musicspace_shared.errors import InvalidInput
from musicspace_shared.features import FEATURES
from musicspace_shared.recommend import RecommendRequest

_YEAR = re.compile(r"^(\d{4})")
_MAX_OFFSET = 999_999


@dataclass
class Columns:
    """What the steps read per catalog row. Build once per catalog version and keep it: the
    label codes and years are computed on first use, then cached."""

    track_index: Mapping[str, int]
    artists: np.ndarray  # int code per row: same code, same artist
    genres: Sequence[str]
    subgenres: Sequence[str]
    features: np.ndarray  # (n, 9), NaN when unknown
    release_dates: Sequence[str | None] = ()  # "YYYY[-MM-DD]"; () when the source has none
    release_years: np.ndarray | None = None  # or the years already parsed (NaN: unknown)
    _codes: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.artists)

    def codes(self, column: str) -> tuple[np.ndarray, list[str]]:
        if column not in self._codes:
            self._codes[column] = label_codes(getattr(self, column))
        return self._codes[column]

    @property
    def years(self) -> np.ndarray:
        if self.release_years is None:
            self.release_years = years_of(self.release_dates, len(self))
        return self.release_years


def years_of(release_dates: Sequence[str | None], n: int) -> np.ndarray:
    """The year of each "YYYY[-MM-DD]" date (NaN when absent); all NaN when the source has none."""
    if len(release_dates) != n:
        return np.full(n, np.nan)
    return np.array(
        [float(m.group(1)) if (m := _YEAR.match(d or "")) else np.nan for d in release_dates],
        dtype=np.float64,
    )


def columns_of(frame: TrackFrame, *, artists: np.ndarray | None = None) -> Columns:
    """The Columns of a catalog frame (`artists`: the codes the caller has already)."""
    return Columns(
        track_index=frame.index,
        artists=artists if artists is not None else label_codes(frame.artists)[0],
        genres=frame.genres,
        subgenres=frame.subgenres,
        features=frame.features,
        release_dates=frame.release_dates,
    )


def _label_mask(columns: Columns, column: str, wanted: str) -> np.ndarray:
    codes, names = columns.codes(column)
    key = wanted.strip().lower()
    return codes == names.index(key) if key in names else np.zeros(len(codes), dtype=bool)


def allowed(
    columns: Columns, request: RecommendRequest, *, owned: np.ndarray | None = None
) -> np.ndarray | None:
    """Rows that pass filters, `exclude` and (when asked) are not in `owned`; None: all rows."""
    f, mask = request.filters, None
    if f is None and not request.exclude and not (request.exclude_owned and owned is not None):
        return None
    mask = np.ones(len(columns), dtype=bool)
    if f is not None:
        if f.genre is not None:
            mask &= _label_mask(columns, "genres", f.genre)
        if f.subgenre is not None:
            mask &= _label_mask(columns, "subgenres", f.subgenre)
        with np.errstate(invalid="ignore"):  # NaN (unknown) fails every comparison
            for name, (low, high) in f.ranges().items():
                column = columns.features[:, FEATURES.index(name)]
                if low is not None:
                    mask &= column >= low
                if high is not None:
                    mask &= column <= high
            if (years := f.years()) is not None:
                mask &= (columns.years >= years[0]) & (columns.years <= years[1])
    rows = [columns.track_index[t] for t in request.exclude if t in columns.track_index]
    mask[np.asarray(rows, dtype=np.int64)] = False
    if request.exclude_owned and owned is not None:
        mask[owned] = False
    return mask


@dataclass(frozen=True)
class Page:
    positions: np.ndarray  # indices into the ranked list, in rank order
    next_cursor: str | None
    offset: int


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


def _checks(request: RecommendRequest, source: str, version: object, offset: int) -> str:
    return _digest(source, request.selection_key(), offset)[:12] + _digest(version)[:8]


def encode_cursor(request: RecommendRequest, source: str, version: object, offset: int) -> str:
    text = f"{offset}.{_checks(request, source, version, offset)}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def cursor_offset(request: RecommendRequest, *, source: str, version: object) -> int:
    """The offset the request's cursor points at (0 without one); 422 when it is not valid here."""
    if request.cursor is None:
        return 0
    try:
        text = request.cursor + "=" * (-len(request.cursor) % 4)
        offset_text, check = base64.urlsafe_b64decode(text).decode("ascii").split(".", 1)
        if not offset_text.isdigit() or int(offset_text) > _MAX_OFFSET or len(check) != 20:
            raise ValueError(offset_text)
        offset = int(offset_text)
    except ValueError:
        raise InvalidInput(
            "cursor: not a cursor this API issued; send a previous answer's next_cursor as is",
            field="cursor",
        ) from None
    expected = _checks(request, source, version, offset)
    if check[:12] != expected[:12]:
        raise InvalidInput(
            "cursor: it was issued for another request (another route, user, query, filters, "
            "exclude, exclude_owned or max_per_artist), or edited; send the fields of the "
            "request that returned it, or no cursor for the first page",
            field="cursor",
        )
    return offset  # check[12:] is the ranking's version: a newer one reads on at the offset


def take_page(
    ranked: np.ndarray,
    *,
    columns: Columns,
    request: RecommendRequest,
    source: str,
    version: object,
    mask: np.ndarray | None = None,
    default_cap: int | None = None,
) -> Page:
    """The request's page of `ranked` (catalog rows, best first) after the shared steps.

    `mask` is `allowed(...)` for this request (None: every row passes); `version` names the
    model and catalog the list was ranked with (a cursor from another version is refused).
    """
    offset = cursor_offset(request, source=source, version=version)
    cap = request.max_per_artist or default_cap
    end = offset + request.limit
    kept: list[int] = []
    per_artist: dict[int, int] = {}
    passes = mask[ranked] if mask is not None else np.ones(len(ranked), dtype=bool)
    artists = columns.artists[ranked]
    for i in np.flatnonzero(passes).tolist():
        if cap is not None:
            a = int(artists[i])
            if per_artist.get(a, 0) >= cap:
                continue
            per_artist[a] = per_artist.get(a, 0) + 1
        kept.append(i)
        if len(kept) > end:  # one more than the page: there is a next page
            break
    positions = np.asarray(kept[offset:end], dtype=np.int64)
    more = len(kept) > end
    return Page(
        positions=positions,
        next_cursor=encode_cursor(request, source, version, end) if more else None,
        offset=offset,
    )


def unit_score(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Values on a known scale [low, high] mapped linearly (order kept) onto 0..1."""
    return np.clip((np.asarray(values, dtype=np.float64) - low) / (high - low), 0.0, 1.0)


def logistic(values: np.ndarray) -> np.ndarray:
    """An unbounded score (a margin, a log-odds) onto 0..1, order kept; 0 maps to 0.5."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(values, dtype=np.float64)))
