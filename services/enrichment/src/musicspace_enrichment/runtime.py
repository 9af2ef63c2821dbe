"""What the enrichment lifespan builds: the peers' clients and the bulk job runner."""

from __future__ import annotations

from dataclasses import dataclass

from musicspace_enrichment.clients import Peers
from musicspace_enrichment.jobs import BulkEnrichment


@dataclass
class Runtime:
    peers: Peers
    bulk: BulkEnrichment
