"""The catalog watcher: what keeps a service's in-memory catalog (m1's index, m2's content
space, m3's snapshot) in step with the DB, by one policy.

Every `catalog_check_s` seconds (the setting every service reads under its own prefix) a
background task asks for the catalog's version: one aggregate query
(musicspace_shared.catalog.catalog_version, or a service's own that includes it). Only when
the answer moved is `rebuild(version)` run, by that task: requests keep the complete
in-memory catalog they have and never wait for a rebuild. A failed check or rebuild is logged
and tried again at the next round. `check()` runs one round now (startup, a training that
must see the newest rows, tests); `follow(version)` says what a catalog loaded otherwise
follows, so the first round runs at once and rebuilds only if it moved.

A catalog being written in bulk (an enrich-all, an import) moves again within `SETTLE_S` of a
round that saw it move: the round then leaves the rebuild to the next one, for at most
`MAX_DEFERRED_ROUNDS` rounds in a row. Each rebuild reads the whole catalog; made in the middle
of a bulk write it is out of date when done, and at 1M tracks the reads of three services
competed with the writes themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from musicspace_shared.catalog import catalog_version
from musicspace_shared.logs import log_fields

logger = logging.getLogger("musicspace.watch")

# A period of 0 (tests) still yields between rounds instead of spinning on the DB.
MIN_PERIOD_S = 0.05
SETTLE_S = 1.0  # at most the period
MAX_DEFERRED_ROUNDS = 6


class CatalogWatcher:
    """Runs `rebuild(version)` whenever `version(session)` moves; checks every `every_s()` s."""

    def __init__(
        self,
        *,
        name: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        rebuild: Callable[[Any], Awaitable[Any]],
        every_s: Callable[[], float],
        version: Callable[[AsyncSession], Awaitable[Hashable]] = catalog_version,
    ) -> None:
        self.name = name
        self.sessionmaker = sessionmaker
        self.rebuild = rebuild
        self.every_s = every_s  # read each round, so a changed setting applies at once
        self.version = version
        self.seen: Hashable | None = None  # the version the last rebuild was for
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._first_round_now = False
        self.deferred_rounds = 0  # rounds in a row that found the catalog still moving

    def follow(self, version: Hashable) -> None:
        """The in-memory catalog was loaded for `version` without a rebuild (m3's snapshot
        kept on the volume): the first round runs as soon as the watcher starts, not a period
        later, and rebuilds only if the version moved since."""
        self.seen = version
        self._first_round_now = True

    async def check(self, *, force: bool = False) -> bool:
        """One round: True when the version moved (or force) and the rebuild ran."""
        async with self._lock:
            return await self._rebuild_if_moved(await self._read(), force=force)

    async def _rebuild_if_moved(self, version: Hashable, *, force: bool = False) -> bool:
        """With the lock held: rebuild for `version` unless it is the one built (or force)."""
        if not force and version == self.seen:
            return False
        await self.rebuild(version)
        self.seen = version
        return True

    async def _read(self) -> Hashable:
        async with self.sessionmaker() as session:
            return await self.version(session)

    async def _settled(self) -> Hashable | None:
        """The loop's round: the version to rebuild for, or None when it is the one built or
        moved again within SETTLE_S (written in bulk right now; after MAX_DEFERRED_ROUNDS such
        rounds it is rebuilt all the same). An unchanged catalog costs one read."""
        first = await self._read()
        if first == self.seen:
            self.deferred_rounds = 0
            return None
        await asyncio.sleep(min(SETTLE_S, self.every_s()))
        latest = await self._read()
        if latest == first or self.deferred_rounds >= MAX_DEFERRED_ROUNDS:
            self.deferred_rounds = 0
            return latest
        self.deferred_rounds += 1
        return None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"{self.name}-catalog-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            if self._first_round_now:
                self._first_round_now = False
            else:
                await asyncio.sleep(max(self.every_s(), MIN_PERIOD_S))
            try:
                version = await self._settled()
                if version is not None:
                    async with self._lock:
                        await self._rebuild_if_moved(version)
            except Exception as exc:  # noqa: BLE001 - keep serving what we have; retry next round
                logger.warning(
                    "catalog check failed",
                    extra=log_fields(watcher=self.name, error=f"{type(exc).__name__}: {exc}"[:200]),
                )
