"""Readiness answers shared by the services' checks (no web framework here)."""

from __future__ import annotations

import threading
from enum import StrEnum

# Set once the process was asked to stop (shared/serve.py): /readyz answers 503 from then on, so
# the gateway takes this replica out of rotation while it still serves what reaches it.
_draining = threading.Event()


def start_draining() -> None:
    _draining.set()


async def shutdown_check(_app: object) -> str | None:
    """The readiness check every service has: not ready once its process is stopping."""
    return "draining: the process is shutting down" if _draining.is_set() else None


class Degraded(str):
    """A readiness answer that is still ready, with a note (e.g. serving a previous model)."""


class ModelState(StrEnum):
    """The states of a held model (musicspace_shared.model_holder), as /readyz and the
    `musicspace_model_state` gauge name them."""

    MISSING = "missing"  # no model file yet: not ready
    READY = "ready"  # the newest file is the one served
    DEGRADED = "degraded"  # the newest file was refused; an earlier verified one serves
    FAILED = "failed"  # a file exists but nothing verifies: not ready
