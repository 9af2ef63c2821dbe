"""The online-measurement counters: labels as given, client-made values bounded."""

from __future__ import annotations

from musicspace_shared.metrics import MAX_LABEL_VALUES, ServiceMetrics


def _value(metrics: ServiceMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, {"service": "m3", **labels}) or 0.0


def test_served_counts_by_source_route_and_arm() -> None:
    metrics = ServiceMetrics("m3")
    metrics.served(source="blend", route="/api/recommend", arm="m3")
    metrics.served(source="blend", route="/api/recommend", arm="m3")
    labels = {"source": "blend", "route": "/api/recommend", "arm": "m3"}
    assert _value(metrics, "musicspace_recommendations_total", **labels) == 2


def test_feedback_labels_made_up_by_clients_stop_growing() -> None:
    metrics = ServiceMetrics("m3")
    for i in range(MAX_LABEL_VALUES + 10):
        metrics.feedback_event(source="m1", arm=f"arm{i}", kind="click")
    kept = {"source": "m1", "kind": "click"}
    assert _value(metrics, "musicspace_feedback_events_total", arm="arm0", **kept) == 1
    assert _value(metrics, "musicspace_feedback_events_total", arm="other", **kept) == 10
    metrics.feedback_event(source="m1", arm="arm0", kind="click")  # a kept value stays kept
    assert _value(metrics, "musicspace_feedback_events_total", arm="arm0", **kept) == 2


def test_a_model_recommend_answer_counts_unless_recommend_asked_for_it() -> None:
    metrics = ServiceMetrics("m3")

    def count() -> float:
        labels = {"source": "m3", "route": "/api/m3/recommend", "arm": "none"}
        return _value(metrics, "musicspace_recommendations_total", **labels)

    metrics.answered(route="/api/m3/recommend", method="POST", status=200, internal=False)
    assert count() == 1
    metrics.answered(route="/api/m3/recommend", method="POST", status=200, internal=True)
    metrics.answered(route="/api/m3/recommend", method="POST", status=422, internal=False)
    metrics.answered(route="/api/m3/events", method="POST", status=200, internal=False)
    assert count() == 1
