"""First-start bootstrap, shared by `make up` (local) and compose's one-shot `bootstrap` service.

    python deploy/bootstrap.py [--keep-going] [--retrain] [--only m1,m2,m3,index]

1. migrate the database (DATABASE_URL) to the latest schema;
2. import the bundled demo catalog and playlists when the database holds no tracks;
3. train every global model whose artifact is missing (m2 first: the others may use its
   predictions), then build the llm search index once (`--only` picks some of these steps:
   a stack that runs only m1, like the swarm test's, needs neither Chroma nor the other models).
Each step runs the `musicspace` CLI in a child process, so its progress bars reach the terminal
and a failure names the step. Exit status 0 only when every step succeeded.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from musicspace_shared.settings import CommonSettings

CLI = [sys.executable, "-m", "musicspace_cli.main"]


@dataclass(frozen=True)
class Step:
    name: str
    args: list[str]
    done: Callable[[CommonSettings], bool]

    @property
    def key(self) -> str:
        """What `--only` calls it: m1, m2, m3 (train <model>) or index."""
        return self.args[1] if self.args[0] == "train" else self.args[0]


def _m3_model_present(settings: CommonSettings) -> bool:
    return any(settings.model_dir("M3").glob("*.cbm"))


def _marker(settings: CommonSettings) -> Path:
    # Beside the model volumes: compose mounts a small volume here so the index is built once.
    return settings.model_root / ".bootstrap" / "index_built"


STEPS = (
    Step(
        "train m2",
        ["train", "m2"],
        lambda s: (s.model_dir("M2") / "tfidf_gbr_models.pkl").is_file(),
    ),
    Step(
        "train m1", ["train", "m1"], lambda s: (s.model_dir("M1") / "audio_predictor.pkl").is_file()
    ),
    Step("train m3", ["train", "m3"], _m3_model_present),
    Step("index rebuild", ["index", "rebuild"], lambda s: _marker(s).is_file()),
)


async def _track_count(settings: CommonSettings) -> int:
    import sqlalchemy as sa

    from musicspace_shared.db.engine import make_engine

    engine = make_engine(settings)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(sa.text("SELECT COUNT(*) FROM track"))).scalar_one())
    finally:
        await engine.dispose()


def _cli(args: list[str]) -> bool:
    print(f"==> musicspace {' '.join(args)}", flush=True)
    started = time.monotonic()
    ok = subprocess.run([*CLI, *args], check=False).returncode == 0
    print(
        f"<== musicspace {' '.join(args)}: {'ok' if ok else 'FAILED'} ({time.monotonic() - started:.0f}s)",
        flush=True,
    )
    return ok


def bootstrap(
    *, keep_going: bool = False, retrain: bool = False, only: set[str] | None = None
) -> list[str]:
    """Run the steps (those whose last word is in `only`, when given); return the failed ones."""
    settings = CommonSettings()
    failed: list[str] = []
    if not _cli(["db", "upgrade"]):
        return ["db upgrade"]  # nothing else can work on an unmigrated database
    if asyncio.run(_track_count(settings)) == 0:
        if not _cli(["import", "demo"]):
            return ["import demo"]
    else:
        print("==> database already holds tracks: demo import skipped", flush=True)
    for step in STEPS:
        if only is not None and step.key not in only:
            continue
        if step.done(settings) and not retrain:
            print(f"==> {step.name}: already done, skipped", flush=True)
            continue
        if _cli(step.args):
            if step.name == "index rebuild":
                _marker(settings).parent.mkdir(parents=True, exist_ok=True)
                _marker(settings).write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
            continue
        failed.append(step.name)
        if not keep_going:
            break
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep-going", action="store_true", help="run the later steps after a failed one"
    )
    parser.add_argument("--retrain", action="store_true", help="train even when an artifact exists")
    parser.add_argument(
        "--only", help="comma-separated steps to run: m1, m2, m3 (train), index (rebuild)"
    )
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    failed = bootstrap(keep_going=args.keep_going, retrain=args.retrain, only=only)
    if failed:
        print(f"bootstrap: FAILED steps: {', '.join(failed)}", file=sys.stderr, flush=True)
        sys.exit(1)
    print("bootstrap: done", flush=True)


if __name__ == "__main__":
    main()
