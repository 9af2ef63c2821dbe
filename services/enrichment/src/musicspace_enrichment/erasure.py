"""Erasure of a user: `DELETE /api/users/{user_id}`.

1. The user's rows go in one transaction: every table with a `user_id` column (library,
   interactions, events, and any such table added later), the model registry rows they own
   (`model_record.owner_id`) and the user row. Once they are gone the model services answer
   404 for the user, so no new answer gets cached and no training starts for them.
2. Then every replica of every service the registry marks `user_state` (m1, m2, m3, llm) is
   asked to forget the user: `DELETE /admin/users/{user_id}` on its own port with the admin
   key (musicspace_shared.forget: model files, cached answers, metric series). Under compose a
   service's name resolves to one address per replica; each address is called.
3. A peer that cannot be reached (or refuses) makes the answer a 503 naming it, with what was
   removed so far. Nothing is left half-done that a retry cannot finish: a repeated DELETE
   finds no rows (200, `existed: false`) and asks every replica again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from musicspace_enrichment.user_schemas import ErasureResult
from musicspace_shared import registry
from musicspace_shared.db.tables import ModelRecord, User
from musicspace_shared.errors import UpstreamUnavailable
from musicspace_shared.forget import ForgetReport
from musicspace_shared.http import PeerRejected, PeerUnavailable, ServiceClient


async def delete_user_rows(engine: AsyncEngine, user_id: int) -> dict[str, int]:
    """Delete the user's rows everywhere, in one transaction; rows deleted by table."""
    user = User.__table__
    owned = [
        (table, table.c.user_id)
        for table in reversed(SQLModel.metadata.sorted_tables)
        if "user_id" in table.c
    ]
    owned.append((ModelRecord.__table__, ModelRecord.__table__.c.owner_id))
    counts: dict[str, int] = {}
    async with engine.begin() as conn:
        for table, column in [*owned, (user, user.c.id)]:
            result = await conn.execute(sa.delete(table).where(column == user_id))
            counts[table.name] = max(int(result.rowcount or 0), 0)
    return counts


class PeerForget:
    """Asks every replica of every user_state service to forget a user (admin key)."""

    def __init__(self, settings: Any, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        admin = settings.admin_key
        headers = {"Authorization": f"Bearer {admin}"} if admin else {}
        self.missing_key = admin is None
        self.clients = {
            service.name: ServiceClient(
                service.name,
                getattr(settings, f"{service.name}_url"),
                timeout_s=settings.forget_timeout_s,
                retries=settings.http_retries,
                transport=transport,
                headers=headers,
            )
            for service in registry.with_user_state()
        }

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    async def _one(
        self, name: str, client: ServiceClient, address: str, path: str
    ) -> ForgetReport | str:
        try:
            response = await client.request_replica(address, "DELETE", path)
            return ForgetReport.model_validate_json(response.content)
        except (PeerUnavailable, PeerRejected) as exc:
            return f"{name} at {address}: {exc}"[:400]
        except ValueError as exc:  # an answer that is not a forget report
            return f"{name} at {address}: unexpected answer: {exc}"[:400]

    async def forget(self, user_id: int) -> tuple[list[ForgetReport], list[str]]:
        """(what each replica removed, the failures: "<service> at <address>: <why>")."""
        if self.missing_key:
            return [], ["enrichment has no admin key (ADMIN_API_KEY_FILE) to call the peers"]
        path = f"/admin/users/{user_id}"
        calls = []
        for name, client in self.clients.items():
            for address in await client.replicas():
                calls.append(self._one(name, client, address, path))
        results = await asyncio.gather(*calls)
        reports = [r for r in results if isinstance(r, ForgetReport)]
        return reports, [r for r in results if isinstance(r, str)]


async def erase_user(*, engine: AsyncEngine, peers: PeerForget, user_id: int) -> ErasureResult:
    """Delete the user's rows, then their files, caches and metric series on every replica."""
    rows = await delete_user_rows(engine, user_id)
    reports, failures = await peers.forget(user_id)
    result = ErasureResult(
        user_id=user_id, existed=rows.get("user", 0) > 0, rows=rows, services=reports
    )
    if failures:
        raise UpstreamUnavailable(
            f"erasure incomplete ({'; '.join(failures[:3])}): the rows are deleted, "
            "retry the DELETE to finish",
            unavailable=failures,
            removed=result.model_dump(mode="json"),
        )
    return result
