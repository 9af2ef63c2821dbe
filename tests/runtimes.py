"""A service runtime (musicspace_shared.runtime.ServiceRuntime) started as its lifespan starts
it, without an app or the watcher's rounds: for tests of what a replica does at start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

from musicspace_shared.db.engine import make_engine, make_sessionmaker
from musicspace_shared.runtime import ServiceRuntime

R = TypeVar("R", bound=ServiceRuntime)


@asynccontextmanager
async def started(runtime: R) -> AsyncIterator[R]:
    """`runtime` after its start(); closed (pool, worker, engine) on the way out."""
    engine = make_engine(url=runtime.settings.database_url)
    runtime.watch(make_sessionmaker(engine))
    try:
        await runtime.start()
        yield runtime
    finally:
        runtime.close()
        runtime.rebuilds.close()
        runtime.cpu.close()
        await engine.dispose()


def events(runtime: ServiceRuntime, name: str) -> float:
    """How often the runtime counted `name` in musicspace_events_total."""
    assert runtime.metrics is not None
    labels = {"service": runtime.name, "event": name}
    value = runtime.metrics.registry.get_sample_value("musicspace_events_total", labels)
    return value or 0.0
