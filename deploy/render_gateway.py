"""Render the gateway's Traefik config for local runs and tests from the service registry
(musicspace_shared.registry: each service's paths and local port) and gateway/routes.yaml
(middlewares and health check, the same for every route).

    python deploy/render_gateway.py local --out var/run/gateway [--gateway-port 8443] [--first-port N]
    python deploy/render_gateway.py labels            # the docker labels compose.yaml must carry

The local render is a static config (entry points, file provider, ping and metrics on an
internal entry point) plus a dynamic folder: middlewares.yml copied from gateway/dynamic,
routes.yml (one router and one load-balanced service per registered service) and
certificates.yml (the certificate's local paths). Compose routes with docker labels instead;
`compose_labels()` is the label set that matches this table (tests compare the two).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from musicspace_shared import registry

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = ROOT / "gateway"
ROUTES_FILE = GATEWAY / "routes.yaml"
MIDDLEWARES_FILE = GATEWAY / "dynamic" / "middlewares.yml"
ENTRYPOINT = "websecure"


def load_routes(path: Path = ROUTES_FILE) -> dict[str, Any]:
    """The route table: {"middlewares": [...], "health_check": {...}, "services": {...}},
    services from the registry: {name: {"port": local port, "rule": Traefik rule}}."""
    table = yaml.safe_load(path.read_text())
    table["services"] = {s.name: {"port": s.port, "rule": s.rule} for s in registry.SERVICES}
    return table


def router_middlewares(table: dict[str, Any]) -> list[str]:
    """Middlewares live in the file provider; `@file` lets docker-labelled routers use them too."""
    return [f"{name}@file" for name in table["middlewares"]]


def dynamic_routes(*, table: dict[str, Any], upstreams: dict[str, str]) -> dict[str, Any]:
    """Traefik dynamic config (file provider) for the route table; upstreams: service -> base URL."""
    health = table["health_check"]
    routers: dict[str, Any] = {}
    services: dict[str, Any] = {}
    for name, spec in table["services"].items():
        routers[name] = {
            "rule": spec["rule"],
            "entryPoints": [ENTRYPOINT],
            "service": name,
            "middlewares": router_middlewares(table),
            "tls": {},
        }
        services[name] = {
            "loadBalancer": {
                "servers": [{"url": upstreams[name]}],
                "healthCheck": {
                    "path": health["path"],
                    "interval": health["interval"],
                    "timeout": health["timeout"],
                },
            }
        }
    return {"http": {"routers": routers, "services": services}}


def compose_labels(*, table: dict[str, Any], service: str) -> dict[str, str]:
    """The docker labels a compose service needs to be routed exactly like the local render."""
    spec, health = table["services"][service], table["health_check"]
    router, lb = f"traefik.http.routers.{service}", f"traefik.http.services.{service}.loadbalancer"
    return {
        "traefik.enable": "true",
        f"{router}.rule": spec["rule"],
        f"{router}.entrypoints": ENTRYPOINT,
        f"{router}.service": service,
        f"{router}.middlewares": ",".join(router_middlewares(table)),
        f"{router}.tls": "true",
        f"{lb}.server.port": str(registry.COMPOSE_PORT),
        f"{lb}.healthcheck.path": health["path"],
        f"{lb}.healthcheck.interval": health["interval"],
        f"{lb}.healthcheck.timeout": health["timeout"],
    }


def middlewares(
    *, rate_average: int | None = None, rate_burst: int | None = None
) -> dict[str, Any]:
    """gateway/dynamic/middlewares.yml, with the rate limit optionally overridden (tests, bench)."""
    config = yaml.safe_load(MIDDLEWARES_FILE.read_text())
    limit = config["http"]["middlewares"]["rate-limit"]["rateLimit"]
    if rate_average is not None:
        limit["average"] = rate_average
    if rate_burst is not None:
        limit["burst"] = rate_burst
    return config


def static_config(
    *,
    dynamic_dir: Path,
    listen: str,
    gateway_port: int,
    ops_port: int,
    log_level: str = "INFO",
    access_log: Path | None = None,
) -> dict[str, Any]:
    """The local static config: the same entry points as gateway/traefik.yml, file provider only."""
    config = yaml.safe_load((GATEWAY / "traefik.yml").read_text())
    config["entryPoints"][ENTRYPOINT]["address"] = f"{listen}:{gateway_port}"
    # Locally the ops entry point (ping, metrics) must not leave the machine.
    config["entryPoints"]["ops"]["address"] = f"127.0.0.1:{ops_port}"
    config["providers"] = {"file": {"directory": str(dynamic_dir), "watch": False}}
    config["log"] = {"level": log_level, "noColor": True}
    if access_log is None:
        config.pop("accessLog", None)
    else:
        config["accessLog"] = {"format": "json", "filePath": str(access_log)}
    return config


def render_local(
    *,
    out_dir: Path,
    ports: dict[str, int],
    cert_dir: Path,
    gateway_port: int = 8443,
    ops_port: int = 8082,
    listen: str = "",
    upstream_host: str = "127.0.0.1",
    rate_average: int | None = None,
    rate_burst: int | None = None,
    access_log: Path | None = None,
    health_probe_path: str | None = None,
    health_probe_service: str = "m1",
) -> Path:
    """Write the local static + dynamic config into out_dir and return the static file's path.

    health_probe_path (benchmarks only, never `make up` or compose) also routes that path to
    health_probe_service's /healthz, so a benchmark can measure the gateway's own cost next
    to real routes.
    """
    table = load_routes()
    missing = set(table["services"]) - set(ports)
    if missing:
        raise ValueError(f"no port for {sorted(missing)}")
    dynamic_dir = out_dir / "dynamic"
    dynamic_dir.mkdir(parents=True, exist_ok=True)
    upstreams = {name: f"http://{upstream_host}:{port}" for name, port in ports.items()}
    certificates = {
        "tls": {
            "stores": {
                "default": {
                    "defaultCertificate": {
                        "certFile": str(cert_dir.resolve() / "cert.pem"),
                        "keyFile": str(cert_dir.resolve() / "key.pem"),
                    }
                }
            }
        }
    }
    routes = dynamic_routes(table=table, upstreams=upstreams)
    if health_probe_path:
        routes["http"]["routers"]["bench-healthz"] = {
            "rule": f"Path(`{health_probe_path}`)",
            "entryPoints": [ENTRYPOINT],
            "service": health_probe_service,
            "middlewares": [*router_middlewares(table), "bench-healthz-path"],
            "tls": {},
        }
        routes["http"]["middlewares"] = {
            "bench-healthz-path": {"replacePath": {"path": "/healthz"}}
        }
    files = {
        "middlewares.yml": middlewares(rate_average=rate_average, rate_burst=rate_burst),
        "routes.yml": routes,
        "certificates.yml": certificates,
    }
    for name, content in files.items():
        (dynamic_dir / name).write_text(yaml.safe_dump(content, sort_keys=False))
    static = static_config(
        dynamic_dir=dynamic_dir.resolve(),
        listen=listen,
        gateway_port=gateway_port,
        ops_port=ops_port,
        access_log=access_log,
    )
    static_path = out_dir / "traefik.yml"
    static_path.write_text(yaml.safe_dump(static, sort_keys=False))
    return static_path


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Render the gateway config from the service registry and gateway/routes.yaml"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    local = sub.add_parser("local", help="static + dynamic config for local processes")
    local.add_argument("--out", type=Path, default=ROOT / "var" / "run" / "gateway")
    local.add_argument("--cert-dir", type=Path, default=GATEWAY / "certs")
    local.add_argument("--gateway-port", type=int, default=8443)
    local.add_argument("--ops-port", type=int, default=8082)
    local.add_argument("--first-port", type=int, default=registry.SERVICES[0].port)
    sub.add_parser("labels", help="print the docker labels compose.yaml must carry")
    args = parser.parse_args()
    if args.command == "local":
        path = render_local(
            out_dir=args.out,
            ports=registry.local_ports(args.first_port),
            cert_dir=args.cert_dir,
            gateway_port=args.gateway_port,
            ops_port=args.ops_port,
        )
        print(path)
    else:
        table = load_routes()
        print(
            json.dumps(
                {name: compose_labels(table=table, service=name) for name in table["services"]},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
