"""What the recommend lifespan builds: a client per model, the popular-tracks cache, the arms."""

from __future__ import annotations

from dataclasses import dataclass

from musicspace_recommend.arms import Arm
from musicspace_recommend.popular import PopularCache
from musicspace_shared.http import ServiceClient


@dataclass
class Runtime:
    clients: dict[str, ServiceClient]  # model -> its client
    popular: PopularCache
    arms: tuple[Arm, ...]

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
