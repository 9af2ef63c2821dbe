"""Coalesced background work: at most one run in progress and one queued, callers never wait.

An index sync or catalog refresh asked for ten times while one runs must not run ten times
(nor make ten callers wait behind a lock): the requests made during a run fold into ONE next
run, which starts when the current one ends and sees every change made before they asked.
`request()` answers at once; `run()` is for the callers that want the result (the periodic
loop, tests, the CLI). `min_gap_s` spaces runs out, so a stream of requests cannot keep the
job running all the time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, Literal, TypeVar

from musicspace_shared.logs import log_fields

T = TypeVar("T")
Accepted = Literal["started", "queued", "joined"]
logger = logging.getLogger("musicspace.coalesce")


class Coalescer(Generic[T]):
    """Runs `job` in a background task, never two at once; requests during a run queue one more."""

    def __init__(
        self, job: Callable[[], Awaitable[T]], *, name: str, min_gap_s: float = 0.0
    ) -> None:
        self.job = job
        self.name = name
        # A run starts at least this long after the previous one ended (queued or requested
        # later): back-to-back requests cost at most one run per gap, whatever their number.
        self.min_gap_s = min_gap_s
        self.runs = 0  # completed runs (also the failed ones)
        self._task: asyncio.Task[None] | None = None
        self._next: asyncio.Future[T] | None = None  # the queued run's outcome
        self._ended_at: float | None = None  # loop time the last run ended

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def pending(self) -> bool:
        return self._next is not None and self.running

    def request(self) -> tuple[Accepted, asyncio.Future[T]]:
        """Ask for a run that starts after now; returns at once with how it was taken and its
        outcome: "started" (nothing was running), "queued" (runs after the current one) or
        "joined" (a queued run already existed: this request shares it)."""
        if self._next is not None:
            accepted: Accepted = "joined"
        else:
            self._next = asyncio.get_running_loop().create_future()
            # Nobody may await a request's outcome: do not warn about an unretrieved error.
            self._next.add_done_callback(_consume)
            accepted = "queued" if self.running else "started"
        outcome = self._next
        if not self.running:
            self._task = asyncio.create_task(self._loop(), name=self.name)
        return accepted, outcome

    async def run(self) -> T:
        """Request a run and wait for its outcome (its exception is raised here)."""
        _, outcome = self.request()
        return await asyncio.shield(outcome)

    async def idle(self) -> None:
        """Until nothing runs and nothing is queued (tests, shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._next is not None and not self._next.done():
            self._next.cancel()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self._next is not None:
            if self._ended_at is not None:
                # Requests made meanwhile join the queued run.
                await asyncio.sleep(self._ended_at + self.min_gap_s - loop.time())
            outcome, self._next = self._next, None
            try:
                result = await self.job()
            except asyncio.CancelledError:
                outcome.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - handed to whoever awaits the outcome
                logger.warning(
                    "background run failed",
                    extra=log_fields(job=self.name, error=f"{type(exc).__name__}: {exc}"[:300]),
                )
                outcome.set_exception(exc)
            else:
                outcome.set_result(result)
            finally:
                self.runs += 1
                self._ended_at = loop.time()


def _consume(future: asyncio.Future) -> None:  # type: ignore[type-arg]
    if not future.cancelled():
        future.exception()
