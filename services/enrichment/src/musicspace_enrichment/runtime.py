"""What the enrichment lifespan builds: the peers' clients, the bulk job runner, the erasure's clients."""

from __future__ import annotations

from dataclasses import dataclass

from musicspace_enrichment.clients import Peers
from musicspace_enrichment.erasure import PeerForget
from musicspace_enrichment.jobs import BulkEnrichment


@dataclass
class Runtime:
    peers: Peers
    bulk: BulkEnrichment
    forget: PeerForget  # the erasure's calls to every replica holding per-user state
