"""Readiness answers shared by the services' checks (no web framework here)."""

from __future__ import annotations


class Degraded(str):
    """A readiness answer that is still ready, with a note (e.g. serving a previous model)."""
