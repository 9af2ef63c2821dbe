"""parse_predictions: m2's predict-audio answer -> one Prediction per item sent."""

from __future__ import annotations

import orjson
import pytest

from musicspace_enrichment.clients import parse_predictions
from musicspace_shared.features import FEATURE_RANGES, FEATURES

GOOD = dict(zip(FEATURES, (0.5, 0.6, 0.4, 0.2, 0.01, 0.15, 0.05, 120.0, -7.0), strict=True))


def _answer(*results: dict[str, object], version: str = "v7") -> bytes:
    return orjson.dumps({"source": "m2", "model_version": version, "results": list(results)})


def test_each_item_gets_its_values_in_feature_order_whatever_the_answer_order() -> None:
    other = GOOD | {"tempo": 99.5}
    batch = parse_predictions(
        _answer(
            {"index": 1, "ok": True, "features": other},
            {"index": 0, "ok": True, "features": GOOD, "confidence": 0.4, "intervals": None},
        ),
        2,
    )
    assert batch.model_version == "v7"
    assert [p.values for p in batch.predictions] == [
        tuple(GOOD[f] for f in FEATURES),
        tuple(other[f] for f in FEATURES),
    ]
    assert all(p.error is None for p in batch.predictions)


def test_out_of_range_values_are_clipped_and_unusable_ones_fail_only_their_item() -> None:
    loud = GOOD | {"loudness": 12.0, "energy": -0.3}
    batch = parse_predictions(
        _answer(
            {"index": 0, "ok": True, "features": loud},
            {"index": 1, "ok": True, "features": GOOD | {"valence": None}},
            {"index": 2, "ok": True, "features": {k: v for k, v in GOOD.items() if k != "tempo"}},
            {"index": 3, "ok": False, "error": "unknown track id", "features": None},
            {"index": 4, "ok": True, "features": None},
        ),
        6,
    )
    first, no_valence, no_tempo, unknown, empty, unanswered = batch.predictions
    assert first.values is not None
    values = dict(zip(FEATURES, first.values, strict=True))
    assert values["loudness"] == FEATURE_RANGES["loudness"][1]
    assert values["energy"] == FEATURE_RANGES["energy"][0]
    assert (no_valence.values, no_valence.error) == (None, "valence missing or not finite")
    assert (no_tempo.values, no_tempo.error) == (None, "tempo missing or not finite")
    assert (unknown.values, unknown.error) == (None, "unknown track id")
    assert (empty.values, empty.error) == (None, "danceability missing or not finite")
    assert (unanswered.values, unanswered.error) == (None, "m2 returned no result for this item")


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        orjson.dumps({"results": []}),
        orjson.dumps({"model_version": 3, "results": []}),
        orjson.dumps({"model_version": "v", "results": [{"ok": True}]}),
        orjson.dumps(
            {
                "model_version": "v",
                "results": [{"index": 0, "ok": True, "features": {"tempo": "fast"}}],
            }
        ),
    ],
)
def test_an_answer_that_is_not_a_predict_audio_answer_is_a_value_error(content: bytes) -> None:
    with pytest.raises(ValueError):
        parse_predictions(content, 1)
