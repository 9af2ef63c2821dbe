"""The one registry of services: name, public routes, local port, model volume.

Everything that lists the services reads it: the gateway's routes (deploy/render_gateway.py),
the Makefile (images and locks), the local stack (deploy/localstack.py), the benchmarks
(bench/context.py), the end-to-end stack (tests/e2e/conftest.py), the compose checks
(tests/test_compose.py, tests/test_gateway_config.py), each service's `python -m` entry point
and the peers' default URLs (settings.py). Adding a service: one entry here, its package
(services/<name>, requirements/images/<name>.in) and its block in compose.yaml, which the
compose checks compare with this table.

Standard library only, imports nothing of the project: `make` and deploy/localstack.py read
it with the system interpreter, before the virtualenv exists.
"""

from __future__ import annotations

from dataclasses import dataclass

LOCAL_HOST = "127.0.0.1"
COMPOSE_PORT = 8000  # every service container listens here (deploy/Dockerfile)


@dataclass(frozen=True)
class Service:
    name: str  # folder, package musicspace_<name>, compose service, router, metric label
    port: int  # local port (`make up`); FIRST_SERVICE_PORT shifts them all together
    # Public paths the gateway routes here: one ending in "/" is a prefix, the others exact.
    routes: tuple[str, ...]
    # The model volume: <MODEL_ROOT>/<family> locally, `<name>-models` at /app/<family> in compose.
    model_family: str | None = None
    # Holds per-user state (model files, cached answers, metric labels): it serves
    # DELETE /admin/users/{user_id} (musicspace_shared.forget), which the erasure of a user
    # (enrichment's DELETE /api/users/{user_id}) calls on every replica.
    user_state: bool = False

    @property
    def rule(self) -> str:
        """The Traefik router rule for `routes`."""
        return " || ".join(
            f"PathPrefix(`{path}`)" if path.endswith("/") else f"Path(`{path}`)"
            for path in self.routes
        )

    @property
    def package(self) -> str:
        return f"musicspace_{self.name}"

    @property
    def volume(self) -> str | None:
        """The compose volume that holds this service's models."""
        return f"{self.name}-models" if self.model_family else None


SERVICES: tuple[Service, ...] = (
    Service("m1", 8001, ("/api/m1/",), model_family="M1", user_state=True),
    Service("m2", 8002, ("/api/m2/",), model_family="M2", user_state=True),
    # /api/m3/ includes /api/m3/events (plays, likes, skips).
    Service("m3", 8003, ("/api/m3/",), model_family="M3", user_state=True),
    Service("llm", 8004, ("/api/llm/",), user_state=True),
    # The user lifecycle too: /api/users/{id} (PUT, DELETE), /api/users/{id}/library, /api/tracks.
    Service(
        "enrichment",
        8005,
        (
            "/api/init-models",
            "/api/enrich-all",
            "/api/enrich-status",
            "/api/enrich-status/",
            "/api/users/",
            "/api/tracks",
        ),
    ),
    # The app's one recommend call: asks m1, m2, m3 (and llm for a query) and blends them.
    Service("recommend", 8006, ("/api/recommend",)),
)


def names() -> tuple[str, ...]:
    return tuple(service.name for service in SERVICES)


def get(name: str) -> Service:
    for service in SERVICES:
        if service.name == name:
            return service
    raise KeyError(f"no service {name!r} in the registry; have {', '.join(names())}")


def local_ports(first_port: int | None = None) -> dict[str, int]:
    """Each service's local port; with first_port, all shifted so the first service gets it."""
    shift = 0 if first_port is None else first_port - SERVICES[0].port
    return {service.name: service.port + shift for service in SERVICES}


def local_url(name: str) -> str:
    """A peer's default base URL in a local run (compose and tests set <NAME>_URL)."""
    return f"http://{LOCAL_HOST}:{get(name).port}"


def with_user_state() -> tuple[Service, ...]:
    """The services an erasure must reach (user_state)."""
    return tuple(s for s in SERVICES if s.user_state)


def model_families() -> tuple[str, ...]:
    """The model volumes' folder names under MODEL_ROOT, e.g. ("M1", "M2", "M3")."""
    return tuple(s.model_family for s in SERVICES if s.model_family)


if __name__ == "__main__":
    # `python shared/src/musicspace_shared/registry.py`: the names, for the Makefile.
    print(" ".join(names()))
