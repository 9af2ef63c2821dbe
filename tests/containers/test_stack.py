"""The stack as an operator meets it: bootstrap done, every route through 8443, the seed's paths."""

from __future__ import annotations

import json

from tests.containers.compose_stack import ComposeStack


def test_bootstrap_exited_0_and_every_container_is_healthy(compose_stack: ComposeStack) -> None:
    rows = [
        json.loads(line)
        for line in compose_stack.compose("ps", "--all", "--format", "json").splitlines()
        if line.strip()
    ]
    by_service: dict[str, list[dict]] = {}
    for row in rows:
        by_service.setdefault(row["Service"], []).append(row)
    (bootstrap,) = by_service.pop("bootstrap")
    assert bootstrap["State"] == "exited" and bootstrap["ExitCode"] == 0, bootstrap
    prometheus = by_service.pop("prometheus")
    assert [row["State"] for row in prometheus] == ["running"]
    assert {name: len(rows) for name, rows in by_service.items()} == {
        "mariadb": 1,
        "chroma": 1,
        "traefik": 1,
        "m1": 3,
        "m2": 2,
        "m3": 1,
        "llm": 2,
        "enrichment": 1,
        "recommend": 1,
    }
    unhealthy = [
        row["Name"] for rows in by_service.values() for row in rows if row["Health"] != "healthy"
    ]
    assert unhealthy == []


def test_every_public_route_answers_through_the_gateway(
    compose_stack: ComposeStack, demo_users: list[int]
) -> None:
    track_id = compose_stack.sql(
        "SELECT track_id FROM track WHERE features_source = 'measured' LIMIT 1"
    )[0][0]
    assert compose_stack.failed_public_calls(demo_users[-1], track_id) == []


def test_model_files_lie_at_the_seeds_paths_on_named_volumes(
    compose_stack: ComposeStack, demo_users: list[int]
) -> None:
    user = demo_users[-1]  # trained by the route test above
    m1, m2, m3 = (compose_stack.containers(name)[0] for name in ("m1", "m2", "m3"))
    listing = compose_stack.docker("exec", m1, "ls", "/app/M1", f"/app/M1/user_models/{user}")
    assert (
        "audio_predictor.pkl" in listing and "model.pkl" in listing and "metadata.json" in listing
    )
    assert "tfidf_gbr_models.pkl" in compose_stack.docker("exec", m2, "ls", "/app/M2")
    assert f"{user}_.cbm" in compose_stack.docker("exec", m3, "ls", "/app/M3/user_models")
    assert ".cbm" in compose_stack.docker("exec", m3, "ls", "/app/M3")
    for container, target, volume in ((m1, "/app/M1", "m1-models"), (m3, "/app/M3", "m3-models")):
        mounts = json.loads(compose_stack.docker("inspect", "-f", "{{json .Mounts}}", container))
        (mount,) = [m for m in mounts if m["Destination"] == target]
        assert mount["Type"] == "volume" and mount["Name"].endswith(volume), mount


def test_ops_model_commands_work_in_the_containers(
    compose_stack: ComposeStack, demo_users: list[int]
) -> None:
    user = demo_users[-1]
    usage = compose_stack.compose("exec", "-T", "m1", "du", "-sh", "/app/M1/user_models")
    assert usage.split()[1] == "/app/M1/user_models"
    m1 = compose_stack.containers("m1")[0]
    # The user's model was last used 200 days ago, as far as the volume can tell.
    compose_stack.docker(
        "exec",
        m1,
        "find",
        f"/app/M1/user_models/{user}",
        "-exec",
        "touch",
        "-d",
        "200 days ago",
        "{}",
        "+",
    )
    cleanup = "/admin/models/cleanup"
    dry = json.loads(
        compose_stack.exec_python(
            m1, _admin_post(cleanup, {"older_than_days": 90, "dry_run": True})
        )
    )
    assert dry["dry_run"] is True and str(user) in json.dumps(dry), dry
    assert str(user) in compose_stack.docker("exec", m1, "ls", "/app/M1/user_models").split()
    done = json.loads(
        compose_stack.exec_python(
            m1, _admin_post(cleanup, {"older_than_days": 90, "dry_run": False})
        )
    )
    assert done["dry_run"] is False, done
    listing = compose_stack.docker("exec", m1, "ls", "/app/M1/user_models")
    assert str(user) not in listing.split(), listing


def _admin_post(path: str, body: dict) -> str:
    """Python for inside a container: POST to its own port with the admin key, print the body."""
    return (
        "import json, urllib.request as u; "
        f"r = u.urlopen(u.Request('http://127.0.0.1:8000{path}', data=json.dumps({body!r}).encode(), "
        "headers={'X-API-Key': open('/run/secrets/admin_api_key').read(), 'Content-Type': 'application/json'}), timeout=60); "
        "print(r.read().decode())"
    )
