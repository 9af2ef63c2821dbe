"""The offline embedder's query cache under concurrent requests."""

from __future__ import annotations

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
