"""Requests at a steady arrival rate through the gateway, recorded one by one.

Open loop: request i is sent at start + i / rate whatever happened to the earlier ones (a
stalled replica cannot slow the load down and hide itself), from a pool of threads with
keep-alive connections. Each record has its scheduled send time and its end, so a test can
tell which requests were in flight at a given moment.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Outcome:
    scheduled: float
    ended: float
    status: int | None  # None: no HTTP answer at all
    detail: str

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 400


Request = Callable[[httpx.Client, int], httpx.Response]


class SteadyLoad:
    def __init__(
        self, make_client: Callable[[], httpx.Client], request: Request, *, rate: float = 20.0
    ) -> None:
        self.make_client = make_client
        self.request = request
        self.rate = rate
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="load")
        self._scheduler = threading.Thread(target=self._schedule, daemon=True)

    def __enter__(self) -> SteadyLoad:
        self._scheduler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._scheduler.join()
        self._pool.shutdown(wait=True)
        for client in self._clients:
            client.close()

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self.make_client()
            with self._lock:
                self._clients.append(client)
        return client

    def _schedule(self) -> None:
        start = time.monotonic()
        for i in itertools.count():
            scheduled = start + i / self.rate
            delay = scheduled - time.monotonic()
            if self._stop.wait(max(0.0, delay)):
                return
            self._pool.submit(self._send, i, scheduled)

    def _send(self, i: int, scheduled: float) -> None:
        try:
            response = self.request(self._client(), i)
            outcome = Outcome(
                scheduled, time.monotonic(), response.status_code, response.text[:200]
            )
        except httpx.HTTPError as exc:
            outcome = Outcome(scheduled, time.monotonic(), None, f"{type(exc).__name__}: {exc}")
        with self._lock:
            self.outcomes.append(outcome)

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def in_flight_at(self, moment: float) -> int:
        return sum(o.scheduled <= moment <= o.ended for o in self.outcomes)
