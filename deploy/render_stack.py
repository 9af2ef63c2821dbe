"""Render the Docker Swarm stack file (stack.yaml) and Traefik's swarm static config
(gateway/traefik-swarm.yml) from compose.yaml and gateway/traefik.yml.

    python deploy/render_stack.py                 # write both files (make stack)
    python deploy/render_stack.py --check         # exit 1 when a committed file is stale
    python deploy/render_stack.py --services mariadb,m1 --out -   # a subset, on stdout

compose.yaml stays the one description of the images, environment, secrets, volumes, health
checks and routes; this script adds only what a swarm needs and compose cannot say, and
removes what a swarm ignores. Both outputs are committed (an operator deploys them without
Python) and tests/test_swarm_stack.py fails when they differ from a fresh render, so they
cannot drift from compose.yaml. What changes, and why:

- `build`, `depends_on` and `restart` go (swarm ignores them): restarts become
  `deploy.restart_policy`; the one-shot bootstrap restarts only on failure; the services wait
  for it by staying unready (no model, no schema) and swarm restarts them until they are healthy.
- Service labels move to `deploy.labels`: Traefik's swarm provider reads the service's labels.
- Every service gets `endpoint_mode: dnsrr`: its name resolves to each task's address, as under
  compose (enrichment's erasure and Prometheus' DNS discovery reach every replica), with no
  virtual IP: swarm's VIPs need the kernel's IPVS, which some hosts lack (this one: a VIP
  accepted no connection), and the services and Traefik spread calls over replicas themselves.
- Traefik publishes 8443 in `host` mode on its node (no routing mesh, which also needs IPVS):
  clients keep their own addresses, which its per-IP rate limit counts.
- The MusicSpace services roll: the new replica starts first, and swarm waits for its health
  check before stopping an old one.
- Bind mounts become swarm configs and secrets (a swarm keeps them; a node has no checkout):
  Traefik's static and dynamic config, its certificate (secrets), Prometheus' config. The
  docker socket stays a bind mount: Traefik runs on a manager and reads the swarm's services.
- Stateful services (MariaDB, Chroma, Prometheus, the bootstrap job's marker) and Traefik stay
  on a manager node: their volumes are local to it. The model volumes take driver options from the environment (empty:
  a local folder on one node; NFS for several nodes: README "Swarm").
- The network is an attachable overlay; Prometheus publishes no port (swarm cannot bind to 127.0.0.1).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from musicspace_shared import registry

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "compose.yaml"
STACK_FILE = ROOT / "stack.yaml"
TRAEFIK_STATIC = ROOT / "gateway" / "traefik.yml"
TRAEFIK_SWARM_STATIC = ROOT / "gateway" / "traefik-swarm.yml"
STACK_NAME = "musicspace"  # `docker stack deploy ... musicspace`; Traefik routes only this stack

# Replicas per service where one is not enough (the rest run one each; scale with
# `docker service scale musicspace_<name>=N`).
REPLICAS = {"m1": 3}
# Pinned to a manager: the docker socket (Traefik) or a volume local to that node (the
# bootstrap job keeps its index marker in one).
ON_MANAGER = ("mariadb", "chroma", "traefik", "prometheus", "bootstrap")

ROLLING_UPDATE = {
    "parallelism": 1,  # one replica at a time: the others keep serving
    "delay": "5s",  # between replicas: Traefik's health check (every 5 s) sees the new one
    "order": "start-first",  # the new replica runs (healthy) before the old one stops
    "failure_action": "rollback",  # an unhealthy new version goes back to the old one
    "monitor": "20s",  # a new replica that fails within this counts as a failed update
}
ROLLBACK = {"parallelism": 1, "order": "start-first"}

# compose.yaml's bind mounts, each turned into a swarm config or secret: source -> (kind, name).
# A bind mount not listed here fails the render (a new one must be decided, not dropped).
BIND_MOUNTS = {
    "${TRAEFIK_STATIC_CONFIG:-./gateway/traefik.yml}": [
        ("configs", "traefik_static", "${TRAEFIK_STATIC_CONFIG:-./gateway/traefik-swarm.yml}", ""),
    ],
    "./gateway/dynamic": [
        ("configs", "traefik_middlewares", "./gateway/dynamic/middlewares.yml", "middlewares.yml"),
        (
            "configs",
            "traefik_certificates",
            "./gateway/dynamic/certificates.yml",
            "certificates.yml",
        ),
    ],
    "${CERTS_DIR:-./gateway/certs}": [
        ("secrets", "tls_cert", "${CERTS_DIR:-./gateway/certs}/cert.pem", "cert.pem"),
        ("secrets", "tls_key", "${CERTS_DIR:-./gateway/certs}/key.pem", "key.pem"),
    ],
    "./deploy/prometheus.yml": [("configs", "prometheus_config", "./deploy/prometheus.yml", "")],
    "/var/run/docker.sock": [],  # stays a bind mount (below)
}
KEEP_BIND = ("/var/run/docker.sock",)

HEADER = """\
# Generated by deploy/render_stack.py from compose.yaml (`make stack`); do not edit: change
# compose.yaml or the script, then `make stack` (tests/test_swarm_stack.py checks it is fresh).
# Deploy: README "Swarm" (`make swarm-deploy`, or set -a; . var/images.env; set +a, then
# docker stack deploy --resolve-image never -c stack.yaml musicspace).
"""


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """compose.yaml with its anchors and merge keys resolved; `${...}` left for the deploy."""
    return yaml.safe_load(path.read_text())


def _source_target(volume: str) -> tuple[str, str]:
    """'source:target[:mode]' -> (source, target); a `${X:-default}` source holds no colon."""
    split = volume.index("}") + 1 if volume.startswith("${") else 0
    source, _, rest = volume[split:].partition(":")
    return volume[:split] + source, rest.partition(":")[0]


def _mounts(name: str, service: dict[str, Any], top: dict[str, Any]) -> None:
    """Bind mounts -> configs/secrets (their top-level entries go to `top`)."""
    volumes = []
    for volume in service.get("volumes", []):
        source, target = _source_target(volume)
        if not source.startswith(("/", ".", "${")):
            volumes.append(volume)  # a named volume
            continue
        if source not in BIND_MOUNTS:
            raise ValueError(f"{name}: bind mount {source} has no swarm equivalent in BIND_MOUNTS")
        if source in KEEP_BIND:
            volumes.append(volume)
        for kind, entry, file, leaf in BIND_MOUNTS[source]:
            top.setdefault(kind, {})[entry] = {"file": file}
            mount_target = f"{target}/{leaf}" if leaf else target
            service.setdefault(kind, []).append({"source": entry, "target": mount_target})
    if volumes:
        service["volumes"] = volumes
    else:
        service.pop("volumes", None)


def _host_port(port: str) -> dict[str, Any]:
    """'${GATEWAY_PORT:-8443}:8443' -> published on the node Traefik runs on."""
    published, target = _source_target(port)
    return {"target": int(target), "published": published, "protocol": "tcp", "mode": "host"}


def _restart_policy(restart: str | None) -> dict[str, Any]:
    if restart in (None, "no"):
        # The bootstrap job: done once it exits 0; a failure (DB not up yet) is tried again.
        return {"condition": "on-failure", "delay": "10s", "max_attempts": 10}
    return {"condition": "any", "delay": "5s"}


def swarm_service(name: str, service: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """One compose service as a swarm service (see the module docstring for each change)."""
    service = copy.deepcopy(service)
    for key in ("build", "depends_on"):
        service.pop(key, None)
    deploy: dict[str, Any] = {"restart_policy": _restart_policy(service.pop("restart", None))}
    if labels := service.pop("labels", None):
        deploy["labels"] = labels
    deploy["endpoint_mode"] = "dnsrr"
    if name in registry.names():
        deploy["replicas"] = REPLICAS.get(name, 1)
        deploy["update_config"] = dict(ROLLING_UPDATE)
        deploy["rollback_config"] = dict(ROLLBACK)
    if name in ON_MANAGER:
        deploy["placement"] = {"constraints": ["node.role == manager"]}
    if name == "prometheus":
        service.pop("ports", None)  # 127.0.0.1:9090 cannot be said in a swarm: see README
    if name == "traefik":
        service["ports"] = [_host_port(port) for port in service["ports"]]
    _mounts(name, service, top)
    service["deploy"] = deploy
    return service


def model_volume(name: str) -> dict[str, Any]:
    """Local driver; the same options name an NFS export when the operator sets them."""
    device = f"{name.split('-')[0].upper()}_MODELS_DEVICE"
    return {
        "driver": "local",
        "driver_opts": {
            "type": "${MODEL_VOLUME_TYPE:-}",
            "o": "${MODEL_VOLUME_OPTS:-}",
            "device": f"${{{device}:-}}",
        },
    }


def render(compose: dict[str, Any], services: list[str] | None = None) -> dict[str, Any]:
    """The stack file for `services` (default: every compose service)."""
    top: dict[str, Any] = {}
    chosen = services or list(compose["services"])
    stack_services = {name: swarm_service(name, compose["services"][name], top) for name in chosen}
    used_volumes = {
        v.split(":")[0]
        for s in stack_services.values()
        for v in s.get("volumes", [])
        if not v.startswith("/")
    }
    used_secrets = {
        (s if isinstance(s, str) else s["source"])
        for svc in stack_services.values()
        for s in svc.get("secrets", [])
    }
    secrets = {k: v for k, v in compose["secrets"].items() if k in used_secrets}
    secrets |= top.get("secrets", {})
    stack: dict[str, Any] = {
        "version": "3.9",  # the compose file format `docker stack deploy` reads
        "services": stack_services,
        # Attachable: an operator's `docker run --network musicspace_backend musicspace/cli ...`
        # reaches the database and the services (README "Swarm").
        "networks": {"backend": {"driver": "overlay", "attachable": True}},
        "volumes": {
            name: model_volume(name) if name.endswith("-models") else {}
            for name in compose["volumes"]
            if name in used_volumes
        },
        "secrets": secrets,
    }
    if top.get("configs"):
        stack["configs"] = top["configs"]
    return stack


def traefik_swarm_static(static: dict[str, Any], stack_name: str = STACK_NAME) -> dict[str, Any]:
    """gateway/traefik.yml with the swarm provider in place of the docker provider."""
    static = copy.deepcopy(static)
    static["providers"].pop("docker")
    static["providers"]["swarm"] = {
        "endpoint": "unix:///var/run/docker.sock",
        "exposedByDefault": False,
        # Only this stack's services (another stack on the same swarm is not routed from here).
        "constraints": f"Label(`com.docker.stack.namespace`,`{stack_name}`)",
        # The swarm provider polls (no events): every 5 s, like the health checks.
        "refreshSeconds": 5,
    }
    return static


def dump(data: dict[str, Any], header: str) -> str:
    return header + yaml.safe_dump(data, sort_keys=False, width=200)


def rendered_files(stack_name: str = STACK_NAME) -> dict[Path, str]:
    """What `make stack` writes: {path: text}."""
    static_header = (
        "# Generated by deploy/render_stack.py from gateway/traefik.yml (its comments say why);\n"
        "# only the provider differs: swarm instead of docker. Do not edit: `make stack`.\n"
    )
    static = yaml.safe_load(TRAEFIK_STATIC.read_text())
    return {
        STACK_FILE: dump(render(load_compose()), HEADER),
        TRAEFIK_SWARM_STATIC: dump(traefik_swarm_static(static, stack_name), static_header),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a committed file is stale")
    parser.add_argument("--services", help="comma-separated subset (with --out)")
    parser.add_argument("--out", help="write the stack file here ('-': stdout) instead")
    args = parser.parse_args()
    if args.out:
        services = args.services.split(",") if args.services else None
        text = dump(render(load_compose(), services), HEADER)
        sys.stdout.write(text) if args.out == "-" else Path(args.out).write_text(text)
        return
    files = rendered_files()
    if args.check:
        stale = [str(p.relative_to(ROOT)) for p, text in files.items() if p.read_text() != text]
        if stale:
            sys.exit(f"stale: {', '.join(stale)} (run `make stack`)")
        return
    for path, text in files.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
