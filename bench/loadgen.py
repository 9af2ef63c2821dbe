"""A lean closed-loop HTTP/1.1 load generator (uvloop, raw keep-alive streams, TLS or not).

The benchmarks run the load generator on the same 2-core machine as the stack, so every
microsecond it spends is taken from the services it measures. httpx costs about a millisecond
of CPU per request here; this client sends pre-encoded requests and reads only the status line,
the length and the body, at a few tens of microseconds per request, so the figures describe the
stack rather than the client.

`run_load(calls, ...)` returns (seconds, samples) with one (label, status, ms) per request;
status 0 is a transport error (the connection is then reopened). `run_open_load(calls, rate=...)`
sends at a steady arrival rate instead (open loop): a stalled server does not slow the
senders down, and each latency counts from the moment the request was due, so a stall shows
in full in every request it delayed.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

try:  # uvloop ships with uvicorn[standard] in the dev environment
    import uvloop
except ImportError:  # pragma: no cover - plain asyncio still works, just slower
    uvloop = None  # type: ignore[assignment]

Sample = tuple[str, int, float]
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True)
class Prepared:
    label: str
    request: bytes


def _origin(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    return parts.hostname or "127.0.0.1", parts.port or (443 if tls else 80), tls


def prepare(
    calls: Sequence[Any], headers: dict[str, str]
) -> tuple[tuple[str, int, bool], list[Prepared]]:
    """Encode each Call (label, method, url, json) once; all must share one origin."""
    origins = {_origin(c.url) for c in calls}
    if len(origins) != 1:
        raise ValueError(f"one load targets one origin, got {sorted(origins)}")
    host, port, tls = origin = origins.pop()
    out = []
    for call in calls:
        parts = urlsplit(call.url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"{call.method} {target} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        body = b""
        if call.json is not None:
            body = orjson.dumps(call.json)
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        elif call.method != "GET":
            lines.append("Content-Length: 0")
        out.append(Prepared(call.label, ("\r\n".join(lines) + "\r\n\r\n").encode() + body))
    return origin, out


def _client_tls() -> ssl.SSLContext:
    """The local stack's certificate is self-signed: no verification (loopback only)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _run(coro: Any) -> Any:
    return uvloop.run(coro) if uvloop is not None else asyncio.run(coro)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Status and whether the server keeps the connection; the body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, keep = 0, False, True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            keep = False
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, keep


async def _exchange(
    conn: Connection | None, item: Prepared, connect: Callable[[], Awaitable[Connection]]
) -> tuple[Connection | None, int, float]:
    """One request on `conn` (a new connection when None): the connection if it stays open,
    the status (0: a transport error) and when the response had been read."""
    try:
        if conn is None:
            conn = await connect()
        conn[1].write(item.request)
        status, keep = await _read_response(conn[0])
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
        status, keep = 0, False
    done = time.perf_counter()
    if not keep and conn is not None:
        conn[1].close()
        conn = None
    return conn, status, done


async def _load(
    calls: Sequence[Any],
    concurrency: int,
    seconds: float | None,
    total: int | None,
    warmup: int,
    headers: dict[str, str],
    on_tick: Callable[[float], None] | None,
) -> tuple[float, list[Sample]]:
    if not calls:
        raise ValueError("a load needs at least one call")
    (host, port, tls), prepared = prepare(calls, headers)
    context = _client_tls() if tls else None

    async def connect() -> Connection:
        return await asyncio.open_connection(host, port, ssl=context, limit=1 << 22)

    samples: list[Sample] = []
    counter = 0
    measuring = False
    deadline: float | None = None

    async def worker(first: int) -> None:
        nonlocal counter
        conn: Connection | None = None
        try:
            while True:
                if measuring:
                    if deadline is not None and time.perf_counter() >= deadline:
                        return
                    if total is not None and counter >= total:
                        return
                    item = prepared[counter % len(prepared)]
                    counter += 1
                elif first >= warmup:
                    return
                else:
                    item = prepared[first % len(prepared)]
                    first += concurrency
                t0 = time.perf_counter()
                conn, status, done = await _exchange(conn, item, connect)
                if measuring:
                    samples.append((item.label, status, (done - t0) * 1000))
                if status == 0:
                    await asyncio.sleep(0.01)  # a refused or broken connection: do not spin
        finally:
            if conn is not None:
                conn[1].close()

    # Warm-up (connections, TLS sessions, first-request caches) outside the figures.
    await asyncio.gather(*(worker(i) for i in range(min(concurrency, warmup))))
    measuring = True
    started = time.perf_counter()
    deadline = started + seconds if seconds else None

    async def ticker() -> None:
        while True:
            await asyncio.sleep(1)
            if on_tick is not None:
                on_tick(time.perf_counter() - started)

    tick = asyncio.create_task(ticker())
    await asyncio.gather(*(worker(0) for _ in range(concurrency)))
    tick.cancel()
    return time.perf_counter() - started, samples


def run_load(
    calls: Sequence[Any],
    *,
    concurrency: int,
    seconds: float | None = None,
    total: int | None = None,
    warmup: int = 20,
    headers: dict[str, str] | None = None,
    on_tick: Callable[[float], None] | None = None,
) -> tuple[float, list[Sample]]:
    """Closed-loop load: `concurrency` keep-alive connections send the calls round robin."""
    return _run(_load(calls, concurrency, seconds, total, warmup, headers or {}, on_tick))


async def _open_load(
    calls: Sequence[Any], rate: float, seconds: float, headers: dict[str, str], warmup: int
) -> tuple[float, list[Sample]]:
    if not calls or rate <= 0:
        raise ValueError("an open load needs calls and a positive rate")
    (host, port, tls), prepared = prepare(calls, headers)
    context = _client_tls() if tls else None
    idle: list[Connection] = []
    samples: list[Sample] = []

    async def connect() -> Connection:
        return await asyncio.open_connection(host, port, ssl=context, limit=1 << 22)

    async def send(item: Prepared, due: float, record: bool) -> None:
        conn, status, done = await _exchange(idle.pop() if idle else None, item, connect)
        if record:
            samples.append((item.label, status, (done - due) * 1000))
        if conn is not None:
            idle.append(conn)

    # Warm-up: a few connections opened (TLS handshakes) outside the figures.
    await asyncio.gather(
        *(send(prepared[i % len(prepared)], time.perf_counter(), False) for i in range(warmup))
    )
    started = time.perf_counter()
    tasks = []
    for i in range(int(rate * seconds)):
        due = started + i / rate
        pause = due - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        tasks.append(asyncio.create_task(send(prepared[i % len(prepared)], due, True)))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return time.perf_counter() - started, samples


def run_open_load(
    calls: Sequence[Any],
    *,
    rate: float,
    seconds: float,
    headers: dict[str, str] | None = None,
    warmup: int = 4,
) -> tuple[float, list[Sample]]:
    """Open loop: `rate` requests per second for `seconds`, the calls in turn, each on an idle
    keep-alive connection or a new one; latency from when each request was due."""
    return _run(_open_load(calls, rate, seconds, headers or {}, warmup))
