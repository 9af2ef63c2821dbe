"""The end-to-end stack: every registered service as a real process, and the real Traefik.

`Stack` is what the `stack` fixture (tests/e2e/conftest.py) yields to a test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from deploy import render_gateway
from musicspace_shared.db.engine import make_engine
from tests.processes import ServiceProcess, free_port


@dataclass
class Stack:
    base_url: str
    tmp: Path
    env: dict[str, str]
    ports: dict[str, int]
    admin_key: str
    app_key: str
    user_id: int
    track_id: str
    services: dict[str, ServiceProcess]
    unavailable: dict[str, str] = field(default_factory=dict)
    bootstrap_log: str = ""

    def require(self, service: str) -> None:
        """Fail (not skip) when a service never became ready: the reason and its log tail."""
        if service in self.unavailable:
            pytest.fail(
                f"{service} did not become ready: {self.unavailable[service]}\n-- bootstrap --\n{self.bootstrap_log[-3000:]}"
            )

    @property
    def app(self) -> dict[str, str]:
        """The web backend's credential (acts for any user)."""
        return {"Authorization": f"Bearer {self.app_key}"}

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def client(self, **kwargs: object) -> httpx.Client:
        """A client of the gateway; it sends no credential unless the request says so."""
        return httpx.Client(base_url=self.base_url, verify=False, timeout=120, **kwargs)  # type: ignore[arg-type]

    def render_gateway(self, out_dir: Path, **overrides: object) -> tuple[Path, int, int]:
        """A gateway config for this stack's services; returns (static config, https port, ops port)."""
        gateway_port, ops_port = free_port(), free_port()
        static = render_gateway.render_local(
            out_dir=out_dir,
            ports=self.ports,
            cert_dir=self.tmp / "certs",
            gateway_port=gateway_port,
            ops_port=ops_port,
            listen="127.0.0.1",
            **overrides,  # type: ignore[arg-type]
        )
        return static, gateway_port, ops_port


async def demo_user_and_track(url: str) -> tuple[int, str]:
    """A demo user with at least 10 PMS tracks, and a catalog track with measured features."""
    engine = make_engine(url=url)
    try:
        async with engine.connect() as conn:
            user_id = (
                await conn.execute(
                    sa.text(
                        "SELECT user_id FROM user_track GROUP BY user_id HAVING COUNT(*) >= 10 ORDER BY user_id LIMIT 1"
                    )
                )
            ).scalar_one()
            track_id = (
                await conn.execute(
                    sa.text(
                        "SELECT track_id FROM track WHERE danceability IS NOT NULL ORDER BY track_id LIMIT 1"
                    )
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    return int(user_id), str(track_id)
