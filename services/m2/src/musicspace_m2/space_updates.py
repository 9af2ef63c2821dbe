"""Keeping the content space up to date without refitting it on every catalog change.

A full fit (TF-IDF vocabularies over 28k tracks, features for those lacking them) costs about
1.3 s of CPU on the demo catalog, and grows with the catalog; the rebuild worker paid it on
every change the watcher saw, even a change of one row's updated_at. Here the worker keeps the
last space and what was fitted, compares each row's content (text, metadata, features) with
the last build, and places only new or changed rows with the fitted vocabularies and scale:
the other rows are taken over as they are. Rows that changed only in updated_at cost nothing;
when no row's content changed, the serving process keeps the space it has.

The fitted vocabularies and IDF weights stay those of the last full fit, so the space drifts
slightly from a fresh fit as rows are placed; a full refit runs when the rows placed since the
last fit reach REFIT_SHARE of the catalog, or when the feature model changes.

The worker keeps only what placing needs (KeptSpace: the rows' matrix, where each track's row
is, the digests and the fit), not the space it hands over: the texts, features and candidate
index of a ContentSpace are the serving process' copy's business. At 1M tracks the whole space
kept in the worker doubled m2's memory after a catalog change (2.3 -> 4.7 GB, issue 18).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from musicspace_m2.repository import TrackTable
from musicspace_m2.similar import (
    ContentSpace,
    Impute,
    SpaceFit,
    complete_features,
    fit_space,
    space_digest,
)
from musicspace_shared.row_lookup import RowLookup

REFIT_SHARE = 0.05


def row_digests(table: TrackTable) -> np.ndarray:
    """One 64-bit digest per row of everything the space is built from (only ever compared
    with the same track's digest of the last build)."""
    inputs = table.inputs
    out = bytearray()
    for i in range(len(table.track_ids)):
        text = "\x1f".join(
            (
                inputs.titles[i],
                inputs.artists[i],
                inputs.albums[i],
                inputs.album_ids[i],
                inputs.genres[i],
                inputs.subgenres[i],
            )
        )
        numbers = np.concatenate(([inputs.popularity[i], inputs.years[i]], table.features[i]))
        out += hashlib.blake2b(text.encode() + numbers.tobytes(), digest_size=8).digest()
    return np.frombuffer(bytes(out), dtype=np.uint64)


@dataclass
class KeptSpace:
    """The rebuild worker's memory of its last build: what placing rows in it again needs."""

    model_version: str
    basis: str  # the full fit's version (ContentSpace.basis)
    matrix: sp.csr_matrix  # the last build's rows
    rows: RowLookup  # where each track id's row is in `matrix`
    fit: SpaceFit
    digests: np.ndarray  # row_digests of the last build
    placed_since_fit: int  # rows placed with the fitted vocabularies since the last full fit

    @classmethod
    def of(
        cls, space: ContentSpace, fit: SpaceFit, digests: np.ndarray, placed: int, version: str
    ) -> KeptSpace:
        rows = RowLookup(space.track_ids)
        return cls(version, space.basis, space.matrix, rows, fit, digests, placed)


@dataclass
class Update:
    kept: KeptSpace
    space: ContentSpace | None  # None: same rows, same content; the serving process keeps its
    rows_placed: int  # rows transformed in this update (all of them on a full fit)
    full_fit: bool

    @property
    def changed(self) -> bool:
        return self.space is not None


def update_space(
    kept: KeptSpace | None, table: TrackTable, *, impute: Impute | None, model_version: str
) -> Update:
    digests = row_digests(table)
    if kept is None or kept.model_version != model_version:
        return _full_fit(table, digests, impute, model_version)
    reuse = _reusable(kept, table.track_ids, digests)
    fresh = np.flatnonzero(reuse < 0)
    if not len(fresh) and len(table.track_ids) == len(kept.rows):
        return Update(kept, None, rows_placed=0, full_fit=False)
    placed = kept.placed_since_fit + len(fresh)
    if placed > REFIT_SHARE * len(table.track_ids):
        return _full_fit(table, digests, impute, model_version)
    matrix = _assemble(kept, table, reuse, fresh, impute)
    pop = np.nan_to_num(table.inputs.popularity, nan=0.0) / 100.0
    space = ContentSpace(
        table.track_ids,
        table.inputs,
        matrix,
        pop,
        space_digest(table.track_ids, model_version),
        table.features,
        basis=kept.basis,
        layout=kept.fit.layout(),
    )
    return Update(
        KeptSpace.of(space, kept.fit, digests, placed, model_version),
        space,
        rows_placed=len(fresh),
        full_fit=False,
    )


def _reusable(kept: KeptSpace, track_ids: list[str], digests: np.ndarray) -> np.ndarray:
    """For each new row, the old row with the same id and content, else -1."""
    old = kept.rows.rows(track_ids)
    if not len(kept.digests):
        return old  # all -1
    same = (old >= 0) & (kept.digests[old] == digests)  # old -1 reads the last digest: masked
    return np.where(same, old, -1)


def _assemble(
    kept: KeptSpace,
    table: TrackTable,
    reuse: np.ndarray,
    fresh: np.ndarray,
    impute: Impute | None,
) -> sp.csr_matrix:
    """Old rows taken over by a selection product, fresh rows placed by a scatter product."""
    n, old = len(reuse), kept.matrix
    taken = np.flatnonzero(reuse >= 0)
    select = sp.csr_matrix(
        (np.ones(len(taken), dtype=np.float32), (taken, reuse[taken])), shape=(n, old.shape[0])
    )
    matrix = select @ old
    if len(fresh):
        inputs = table.inputs.take(fresh)
        full = complete_features(inputs, table.features[fresh], impute)
        rows = kept.fit.rows(inputs, full)
        scatter = sp.csr_matrix(
            (np.ones(len(fresh), dtype=np.float32), (fresh, np.arange(len(fresh)))),
            shape=(n, len(fresh)),
        )
        matrix = matrix + scatter @ rows
    return sp.csr_matrix(matrix, dtype=np.float32)


def _full_fit(
    table: TrackTable, digests: np.ndarray, impute: Impute | None, model_version: str
) -> Update:
    space, fit = fit_space(
        track_ids=table.track_ids,
        inputs=table.inputs,
        features=table.features,
        impute=impute,
        tag=model_version,
    )
    return Update(
        KeptSpace.of(space, fit, digests, 0, model_version),
        space,
        rows_placed=len(table.track_ids),
        full_fit=True,
    )
