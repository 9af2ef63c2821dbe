"""The benchmarks' load generator against a small real HTTP/1.1 server on loopback.

It must count every request once with its real status, read bodies of every framing
(Content-Length, chunked) so keep-alive stays in sync, reopen a connection the server closes,
and record a refused connection as a transport error (status 0) rather than crash.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from bench.context import Call
from bench.loadgen import run_load, run_open_load
from tests.processes import free_port


def _answer(path: str, body: bytes) -> bytes:
    if path == "/chunked":
        chunks = b"4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    if path == "/close":
        return b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndown"
    if path == "/echo":
        return b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            path = lines[0].split(" ")[1]
            length = next(
                (
                    int(v)
                    for k, _, v in (x.partition(":") for x in lines[1:])
                    if k.lower() == "content-length"
                ),
                0,
            )
            body = await reader.readexactly(length) if length else b""
            writer.write(_answer(path, body))
            await writer.drain()
            if path == "/close":
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    async def main() -> None:
        async with await asyncio.start_server(_serve, "127.0.0.1", port):
            started.set()
            await stop.wait()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    assert started.wait(10)
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


def test_every_request_is_counted_with_its_status(server: str) -> None:
    calls = [
        Call("echo", "POST", server + "/echo", {"user_id": 1}),
        Call("chunked", "GET", server + "/chunked"),
        Call("missing", "GET", server + "/nope"),
    ]
    seconds, samples = run_load(calls, concurrency=3, total=300, warmup=6)
    assert len(samples) == 300 and seconds > 0
    by_label: dict[str, set[int]] = {}
    for label, status, ms in samples:
        by_label.setdefault(label, set()).add(status)
        assert ms >= 0
    assert by_label == {"echo": {201}, "chunked": {200}, "missing": {404}}


def test_a_closed_connection_is_reopened(server: str) -> None:
    calls = [Call("close", "GET", server + "/close"), Call("echo", "POST", server + "/echo", [1])]
    _, samples = run_load(calls, concurrency=2, total=100, warmup=0)
    assert len(samples) == 100
    assert {status for label, status, _ in samples if label == "close"} == {503}
    assert {status for label, status, _ in samples if label == "echo"} == {201}


def test_calls_to_two_origins_are_refused() -> None:
    with pytest.raises(ValueError, match="one origin"):
        run_load(
            [Call("a", "GET", "http://127.0.0.1:1/x"), Call("b", "GET", "http://127.0.0.1:2/x")],
            concurrency=1,
            total=1,
        )


def test_a_refused_connection_is_a_transport_error() -> None:
    _, samples = run_load(
        [Call("down", "GET", f"http://127.0.0.1:{free_port()}/x")], concurrency=2, total=6, warmup=0
    )
    assert [status for _, status, _ in samples] == [0] * 6


def test_open_load_sends_at_the_rate_and_counts_every_request(server: str) -> None:
    calls = [
        Call("echo", "POST", server + "/echo", {"x": 1}),
        Call("chunked", "GET", server + "/chunked"),
    ]
    seconds, samples = run_open_load(calls, rate=200, seconds=1.0)
    assert len(samples) == 200 and 0.9 < seconds < 5
    assert {status for label, status, _ in samples if label == "echo"} == {201}
    assert {status for label, status, _ in samples if label == "chunked"} == {200}
