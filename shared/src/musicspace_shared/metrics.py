"""Prometheus metrics, one registry per app (so several apps can live in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from musicspace_shared.health import ModelState
from musicspace_shared.recommendation_ids import NO_ARM

# Distinct client-supplied values one label of the feedback counter keeps (then "other").
MAX_LABEL_VALUES = 32
# Sent by /api/recommend when it asks a model: the model's answer is not shown to anyone as
# such (the blend's is, and counted there), so the model route does not count it as served.
INTERNAL_HEADER = "X-MusicSpace-Caller"
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "musicspace_http_requests_total",
            "HTTP requests by route template and status",
            ["service", "route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "musicspace_http_request_duration_seconds",
            "HTTP request duration by route template",
            ["service", "route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Domain events: predictions, trainings, enriched tracks, model load failures, ...
        self.events = Counter(
            "musicspace_events_total",
            "Domain events (predictions, trainings, enrichment, model_load_failures)",
            ["service", "event"],
            registry=self.registry,
        )
        self.gauges = Gauge(
            "musicspace_state",
            "Domain gauges (e.g. enrichment rate)",
            ["service", "name"],
            registry=self.registry,
        )
        # Online measurement (README: Online measurement): answers served and the feedback
        # events that refer to them, by the source and A/B arm named in the recommendation id.
        self.recommendations = Counter(
            "musicspace_recommendations_total",
            "Recommend answers served, by source (model, blend, popular), route and A/B arm",
            ["service", "source", "route", "arm"],
            registry=self.registry,
        )
        self.feedback = Counter(
            "musicspace_feedback_events_total",
            "Recorded events that refer to a recommendation, by its source and arm and the kind",
            ["service", "source", "arm", "kind"],
            registry=self.registry,
        )
        self._label_values: dict[str, set[str]] = {}
        self._recommend_route = f"/api/{service}/recommend"
        self.model_states = Gauge(
            "musicspace_model_state",
            "1 for the state each held model is in (missing, ready, degraded, failed), else 0",
            ["service", "model", "state"],
            registry=self.registry,
        )

    def count(self, event: str, amount: float = 1) -> None:
        self.events.labels(self.service, event).inc(amount)

    def served(self, *, source: str, route: str, arm: str) -> None:
        """One recommend answer given by `source` on `route` to a user in `arm`."""
        self.recommendations.labels(self.service, source, route, arm).inc()

    def answered(self, *, route: str, method: str, status: int, internal: bool) -> None:
        """Count a model's own recommend answer (`POST /api/<service>/recommend`, 200) as
        served, source the service, no arm (musicspace_recommend counts its own, with arms);
        not when /api/recommend asked (`internal`). Called for every request: a compare."""
        if status == 200 and route == self._recommend_route and method == "POST" and not internal:
            self.served(source=self.service, route=route, arm=NO_ARM)

    def feedback_event(self, *, source: str, arm: str, kind: str) -> None:
        """One recorded event referring to an answer of `source` in `arm`. Source and arm come
        from a client's recommendation id: each keeps at most MAX_LABEL_VALUES values per
        process (later ones count as "other"), so made-up ids cannot grow the series."""
        self.feedback.labels(
            self.service, self._bounded("source", source), self._bounded("arm", arm), kind
        ).inc()

    def _bounded(self, label: str, value: str) -> str:
        seen = self._label_values.setdefault(label, set())
        if value in seen or len(seen) < MAX_LABEL_VALUES:
            seen.add(value)
            return value
        return "other"

    def set(self, name: str, value: float) -> None:
        self.gauges.labels(self.service, name).set(value)

    def model_state(self, model: str, state: str) -> None:
        """The holder of `model` (musicspace_shared.model_holder) is now in `state`."""
        for each in ModelState:
            self.model_states.labels(self.service, model, each.value).set(each == state)
