"""ChromaDB: the durable home of the track vectors, one collection per provider/model.

Embedded PersistentClient on the service volume by default; HttpClient to a Chroma server
when CHROMA_URL is set (compose, shared by every replica). Chroma calls are synchronous:
callers run them off the event loop. No embedding function is attached, so Chroma never
loads (or downloads) its default model: vectors always come from our embedders.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlparse

import numpy as np

from musicspace_llm.settings import Settings

logger = logging.getLogger("musicspace.llm.store")

PAGE = 5000
SEARCH_EF = 1000
# Collection metadata: where the next index sync's key scan starts (the durable watermark).
SYNC_FROM = "sync_from"


@dataclass
class StoredVectors:
    ids: list[str]
    vectors: np.ndarray
    hashes: list[str]
    rows: list[str | None] = field(default_factory=list)  # each track's row (metadata "row")


def make_client(settings: Settings):  # noqa: ANN201 - chromadb.ClientAPI
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        return chromadb.HttpClient(
            host=url.hostname or "localhost",
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)


def _with_search_ef(collection):  # noqa: ANN001, ANN202
    """The collection, its HNSW queries exploring SEARCH_EF candidates (Chroma's default, 100,
    found 0.64 of the exact top 10 at 200k tracks; 1000 found 0.87: services/llm/README.md).
    Only large catalogs query the index (ann.py); the setting is kept in the collection."""
    try:
        hnsw = (getattr(collection, "configuration", None) or {}).get("hnsw") or {}
        if hnsw.get("ef_search", SEARCH_EF) != SEARCH_EF:
            collection.modify(configuration={"hnsw": {"ef_search": SEARCH_EF}})
    except Exception:  # noqa: BLE001 - a server without it: its default stands
        logger.warning("setting the collection's HNSW ef_search failed", exc_info=True)
    return collection


class VectorStore:
    """One Chroma collection of track vectors; ids are track ids (upsert replaces)."""

    def __init__(self, client, name: str) -> None:  # noqa: ANN001
        self.client = client
        self.name = name
        self.collection = self._open()

    def _open(self):  # noqa: ANN202
        collection = self.client.get_or_create_collection(
            self.name, embedding_function=None, metadata={"hnsw:space": "cosine"}
        )
        return _with_search_ef(collection)

    def reset(self) -> None:
        """Drop and recreate the collection (a full rebuild)."""
        try:
            self.client.delete_collection(self.name)
        except Exception:  # noqa: BLE001 - absent already
            pass
        self.collection = self._open()

    def identity(self) -> str:
        """The collection's id in Chroma: a new one after every rebuild (reset)."""
        return str(self.collection.id)

    def count(self) -> int:
        return int(self.collection.count())

    def sync_from(self) -> datetime | None:
        """The durable watermark: every track updated before it is in this collection as the
        DB holds it (None after a rebuild, or for a collection written before it existed)."""
        value = (self.client.get_collection(self.name).metadata or {}).get(SYNC_FROM)
        try:
            return datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            return None

    def set_sync_from(self, when: datetime) -> None:
        # hnsw:* keys may not be sent again (Chroma refuses to "change" the distance).
        kept = {
            k: v for k, v in (self.collection.metadata or {}).items() if not k.startswith("hnsw:")
        }
        self.collection.modify(metadata=kept | {SYNC_FROM: when.isoformat()})

    def update_rows(self, ids: list[str], metadatas: list[dict]) -> None:
        """Replace the metadata of stored tracks (their vectors stay)."""
        for start in range(0, len(ids), PAGE):
            self.collection.update(
                ids=ids[start : start + PAGE], metadatas=metadatas[start : start + PAGE]
            )

    def upsert(
        self, *, ids: list[str], vectors: np.ndarray, documents: list[str], metadatas: list[dict]
    ) -> None:
        step = max(1, min(PAGE, int(self.client.get_max_batch_size())))
        for start in range(0, len(ids), step):
            end = start + step
            self.collection.upsert(
                ids=ids[start:end],
                embeddings=np.asarray(vectors[start:end], dtype=np.float32),
                documents=documents[start:end],
                metadatas=metadatas[start:end],
            )

    def load(self, ids: list[str] | None = None) -> StoredVectors:
        """Vectors, document hashes and rows of all stored tracks (or of the given ids)."""
        out_ids: list[str] = []
        chunks: list[np.ndarray] = []
        hashes: list[str] = []
        rows: list[str | None] = []
        include = ["embeddings", "metadatas"]
        if ids is not None:
            pages = [dict(ids=ids[i : i + PAGE]) for i in range(0, len(ids), PAGE)]
        else:
            pages = [dict(limit=PAGE, offset=o) for o in range(0, max(self.count(), 1), PAGE)]
        for page in pages:
            got = self.collection.get(include=include, **page)
            if not got["ids"]:
                continue
            out_ids.extend(got["ids"])
            chunks.append(np.asarray(got["embeddings"], dtype=np.float32))
            metadatas = [m or {} for m in got["metadatas"]]
            hashes.extend(str(m.get("doc_hash", "")) for m in metadatas)
            rows.extend(m.get("row") if isinstance(m.get("row"), str) else None for m in metadatas)
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)
        return StoredVectors(out_ids, vectors, hashes, rows)
