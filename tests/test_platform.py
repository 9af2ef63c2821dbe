"""Platform files: Makefile, lock files, certificate/secret generators, entrypoint, local stack."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509

from deploy import gen_cert, gen_secrets
from deploy.localstack import Stack

ROOT = Path(__file__).resolve().parent.parent
REQUIRED_TARGETS = {
    "help",
    "up",
    "down",
    "status",
    "test",
    "test-fast",
    "lint",
    "bench",
    "fuzz",
    "lock",
    "clean",
}


def _makefile_targets() -> dict[str, str]:
    text = (ROOT / "Makefile").read_text()
    return dict(re.findall(r"^([a-zA-Z][\w-]*):[^=\n]*?(?:## (.*))?$", text, flags=re.MULTILINE))


def test_makefile_default_target_is_help_and_every_target_documented() -> None:
    text = (ROOT / "Makefile").read_text()
    assert ".DEFAULT_GOAL := help" in text
    targets = _makefile_targets()
    assert REQUIRED_TARGETS <= set(targets)
    undocumented = [name for name, doc in targets.items() if not doc]
    assert undocumented == []


def test_make_without_target_lists_targets() -> None:
    output = subprocess.run(
        ["make", "--no-print-directory"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for target in REQUIRED_TARGETS:
        assert target in output


def test_locks_record_no_download_addresses() -> None:
    locks = [
        *ROOT.glob("requirements/*.lock"),
        *ROOT.glob("services/*/requirements.lock"),
        *ROOT.glob("cli/requirements.lock"),
    ]
    assert ROOT / "requirements" / "dev.lock" in locks
    offenders = [
        f"{lock.relative_to(ROOT)}:{n}"
        for lock in locks
        for n, line in enumerate(lock.read_text().splitlines(), 1)
        if re.search(r"https?://", line)
    ]
    assert offenders == []


def test_dev_lock_pins_every_package_with_hashes() -> None:
    text = (ROOT / "requirements" / "dev.lock").read_text()
    pins = re.findall(
        r"^([A-Za-z0-9._-]+)==\S+ \\\n(\s+--hash=sha256:[0-9a-f]{64})", text, flags=re.MULTILINE
    )
    names = re.findall(r"^([A-Za-z0-9._-]+)==", text, flags=re.MULTILINE)
    assert names and len(pins) == len(names)


def test_ci_run_calls_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "make test" in script
    assert "`make test`" in (ROOT / "README.md").read_text()


def test_gen_cert_writes_a_localhost_certificate_and_a_private_key(tmp_path: Path) -> None:
    cert_path, key_path = gen_cert.generate(out_dir=tmp_path)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)
    assert "localhost" in names
    assert key_path.stat().st_mode & 0o077 == 0
    assert gen_cert.generate(out_dir=tmp_path) == (cert_path, key_path)  # kept, not replaced
    assert (
        x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number == cert.serial_number
    )


def test_gen_secrets_never_rotates_existing_files(tmp_path: Path) -> None:
    written = gen_secrets.generate(out_dir=tmp_path)
    assert {p.name for p in written} == {
        "admin_api_key",
        "app_api_key",
        "user_token_secret",
        "db_password",
        "google_api_key",
    }
    before = {p.name: p.read_text() for p in written}
    assert gen_secrets.generate(out_dir=tmp_path) == []
    assert {p.name: p.read_text() for p in written} == before
    # Blank, not empty: a swarm refuses a secret of 0 bytes; the services strip it (offline).
    assert (tmp_path / "google_api_key").read_text() == "\n"
    assert len((tmp_path / "user_token_secret").read_text()) >= 43, "at least 32 random bytes"
    assert before["app_api_key"] != before["admin_api_key"]


def test_gen_secrets_makes_an_empty_google_key_of_an_earlier_version_blank(tmp_path: Path) -> None:
    (tmp_path / "google_api_key").write_text("")
    (tmp_path / "admin_api_key").write_text("kept")
    written = gen_secrets.generate(out_dir=tmp_path)
    assert tmp_path / "google_api_key" in written
    assert (tmp_path / "google_api_key").read_text() == "\n"
    assert (tmp_path / "admin_api_key").read_text() == "kept"
    (tmp_path / "google_api_key").write_text("a-real-key")
    gen_secrets.generate(out_dir=tmp_path)
    assert (tmp_path / "google_api_key").read_text() == "a-real-key"


def test_localstack_creates_each_credential_once_and_hands_them_to_the_services(
    tmp_path: Path,
) -> None:
    stack = Stack(var=tmp_path, gateway_port=18443, first_port=18001, ops_port=18082)
    stack.ensure_credentials()
    files = (stack.admin_key_file, stack.app_key_file, stack.user_token_secret_file)
    first = [path.read_text() for path in files]
    stack.ensure_credentials()
    assert [path.read_text() for path in files] == first, "never rotated"
    assert len(set(first)) == 3 and all(path.stat().st_mode & 0o077 == 0 for path in files)
    env = stack.env()
    assert env["APP_API_KEY_FILE"] == str(stack.app_key_file)
    assert env["USER_TOKEN_SECRET_FILE"] == str(stack.user_token_secret_file)


def test_entrypoint_splices_secret_files_into_the_environment(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("s3cr3t")
    (tmp_path / "google").write_text("gkey")
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": "mysql+asyncmy://musicspace@mariadb:3306/musicspace",
        "DATABASE_PASSWORD_FILE": str(tmp_path / "db"),
        "GOOGLE_API_KEY_FILE": str(tmp_path / "google"),
    }
    out = subprocess.run(
        [
            "sh",
            str(ROOT / "deploy" / "entrypoint.sh"),
            "sh",
            "-c",
            'echo "$DATABASE_URL $GOOGLE_API_KEY"',
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "mysql+asyncmy://musicspace:s3cr3t@mariadb:3306/musicspace gkey"


def test_entrypoint_with_empty_google_key_leaves_it_unset(tmp_path: Path) -> None:
    (tmp_path / "google").write_text("")
    env = {"PATH": "/usr/bin:/bin", "GOOGLE_API_KEY_FILE": str(tmp_path / "google")}
    out = subprocess.run(
        [
            "sh",
            str(ROOT / "deploy" / "entrypoint.sh"),
            "sh",
            "-c",
            'echo "[${GOOGLE_API_KEY-unset}]"',
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[unset]"


def test_localstack_down_never_signals_a_process_it_did_not_start(tmp_path: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stack = Stack(var=tmp_path, gateway_port=18443, first_port=18001, ops_port=18082)
        stack.run.mkdir(parents=True)
        # A stale pid file whose pid now belongs to another program (pid reuse).
        stack.pid_file("m1").write_text(
            json.dumps({"pid": stranger.pid, "cmd": ["/nonexistent/python", "-m", "musicspace_m1"]})
        )
        assert stack.running_pid("m1") is None
        stack.stop("m1")
        assert stranger.poll() is None
        assert not stack.pid_file("m1").exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_localstack_stops_what_it_started(tmp_path: Path) -> None:
    stack = Stack(var=tmp_path, gateway_port=18443, first_port=18001, ops_port=18082)
    stack.run.mkdir(parents=True)
    cmd = [sys.executable, "-c", "import time; time.sleep(60)"]
    process = subprocess.Popen(cmd, start_new_session=True)
    stack.pid_file("m2").write_text(json.dumps({"pid": process.pid, "cmd": cmd}))
    for _ in range(500):  # until the child has exec'd (its /proc cmdline is ours before that)
        if Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")[:2] == [
            c.encode() for c in cmd[:2]
        ]:
            break
        time.sleep(0.01)
    assert stack.running_pid("m2") == process.pid
    stack.stop("m2")
    assert process.wait(timeout=20) is not None
    assert not stack.pid_file("m2").exists()
