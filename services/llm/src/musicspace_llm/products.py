"""Products of the whole catalog's vectors with queries ranked at the same time, in one pass.

A query that names nothing the lexicon knows (a title, an artist) needs its similarity to every
track: one product over the catalog's vectors, which reads them all from memory (58 MB for the
demo catalog, about 5 ms here; most of a known-item search's CPU). Queries that arrive while a
product runs wait for it and then go together: the vectors are read once per block for all of
them (2 queries 3.4 ms each, 4 queries 1.8, 8 queries 1.2 ms each on this machine). A lone
query goes at once, as MicroBatcher does for the query embeddings.

The values differ from a single query's product in the last bits (another kernel adds in
another order); search.py re-scores the contenders for its top k in one fixed way, so rankings
do not depend on which queries shared a pass.
"""

from __future__ import annotations

import threading

import numpy as np

BLOCK_ROWS = 256  # rows per block: 512 KB of vectors, read once and kept in cache for the batch
MAX_BATCH = 16


class _Slot:
    __slots__ = ("query", "result", "error")

    def __init__(self, query: np.ndarray) -> None:
        self.query = query
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None


class CatalogProducts:
    """`products(query)` -> vectors @ query (float32, one value per row), batched across threads."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self._changed = threading.Condition()
        self._waiting: list[_Slot] = []
        self._running = False
        self.batches = 0  # passes over the vectors (tests and the bench read these)
        self.queries = 0

    def __call__(self, query: np.ndarray) -> np.ndarray:
        slot = _Slot(np.asarray(query, dtype=np.float32))
        with self._changed:
            self._waiting.append(slot)
            while self._running and slot.result is None and slot.error is None:
                self._changed.wait()
            if slot.result is None and slot.error is None:
                # Nothing runs: this thread computes for everyone waiting (itself included).
                self._waiting.remove(slot)
                others, self._waiting = (
                    self._waiting[: MAX_BATCH - 1],
                    self._waiting[MAX_BATCH - 1 :],
                )
                batch = [slot, *others]
                self._running = True
        if slot.result is None and slot.error is None:
            self._run(batch)
        if slot.error is not None:
            raise slot.error
        assert slot.result is not None
        return slot.result

    def _run(self, batch: list[_Slot]) -> None:
        try:
            out = self._product(np.stack([s.query for s in batch]))
            for j, s in enumerate(batch):
                s.result = out[:, j]
        except BaseException as exc:  # noqa: BLE001 - every waiting caller gets the error
            for s in batch:
                s.error = exc
        finally:
            with self._changed:
                self._running = False
                self.batches += 1
                self.queries += len(batch)
                self._changed.notify_all()

    def _product(self, queries: np.ndarray) -> np.ndarray:
        if len(queries) == 1:
            return (self.vectors @ queries[0])[:, None]
        columns = np.ascontiguousarray(queries.T)
        out = np.empty((len(self.vectors), len(queries)), dtype=np.float32)
        for start in range(0, len(self.vectors), BLOCK_ROWS):
            end = start + BLOCK_ROWS
            np.matmul(self.vectors[start:end], columns, out=out[start:end])
        return out
