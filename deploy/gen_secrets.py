"""Create the compose secrets (once): admin key, app credential, user-token signing key,
MariaDB password, Google API key.

    python deploy/gen_secrets.py [--out var/secrets]

Existing files are kept, so rerunning never rotates a key behind a running stack.
google_api_key starts blank (one newline: llm then embeds offline; a swarm refuses an empty
secret); put a real key in it to use Gemini.
"""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "var" / "secrets"
BLANK_KEY = "\n"


def generate(*, out_dir: Path) -> list[Path]:
    """Write each missing secret file and return the paths written.

    The folder is 0700 (only its owner gets in); the files are 0644 because compose (without
    Swarm) bind-mounts them with their host permissions, and the containers read them as
    their own non-root users.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    out_dir.chmod(0o700)
    values = {
        "admin_api_key": secrets.token_urlsafe(32),
        # The web app's backend sends it (acts for any user); README "Credentials".
        "app_api_key": secrets.token_urlsafe(32),
        # The web app signs its users' tokens (JWT HS256) with it; the services verify them.
        "user_token_secret": secrets.token_urlsafe(48),
        # Hex: safe inside a database URL without escaping (deploy/entrypoint.sh splices it in).
        "db_password": secrets.token_hex(24),
        # Blank, not empty: `docker stack deploy` refuses a secret of 0 bytes (the services
        # strip the key, so a blank one means the offline embedder).
        "google_api_key": BLANK_KEY,
    }
    written = []
    for name, value in values.items():
        path = out_dir / name
        if path.exists():
            if name == "google_api_key" and path.stat().st_size == 0:
                path.write_text(BLANK_KEY)  # written empty by an earlier version
                written.append(path)
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    for path in generate(out_dir=args.out):
        print(f"wrote {path}")
    print(f"secrets in {args.out}")
    print(
        "  the web app's backend: Authorization: Bearer <app_api_key>; its users: "
        "Authorization: Bearer <JWT HS256 signed with user_token_secret, sub = user id, exp>"
    )


if __name__ == "__main__":
    main()
