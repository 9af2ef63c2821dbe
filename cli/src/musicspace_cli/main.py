"""`musicspace`: the command line for ops and evaluation.

Commands stay thin: they parse options, call the domain code of a service package and print.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from musicspace_cli.demo_data import DEMO_CATALOG, DEMO_PLAYLISTS
from musicspace_shared.settings import CommonSettings

app = typer.Typer(
    help="MusicSpace recommendation backend: import, train, evaluate, operate.",
    no_args_is_help=True,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
import_app = typer.Typer(
    help="Import catalog, playlist and interaction files.", no_args_is_help=True
)
train_app = typer.Typer(help="Train the global models from the DB.", no_args_is_help=True)
eval_app = typer.Typer(help="Deterministic evaluations against baselines.", no_args_is_help=True)
index_app = typer.Typer(help="The llm search index.", no_args_is_help=True)
models_app = typer.Typer(help="Model volumes: usage and cleanup.", no_args_is_help=True)
report_app = typer.Typer(help="Reports over the live data.", no_args_is_help=True)
for sub, name in (
    (db_app, "db"),
    (import_app, "import"),
    (train_app, "train"),
    (eval_app, "eval"),
    (index_app, "index"),
    (models_app, "models"),
    (report_app, "report"),
):
    app.add_typer(sub, name=name)

console = Console(stderr=True)
T = TypeVar("T")
OnError = Annotated[
    str,
    typer.Option(help="skip: import the good rows; reject: write nothing", case_sensitive=False),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")]


def _run(factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(factory())


def _emit(result: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, default=str))
    else:
        console.print_json(json.dumps(result, default=str))


def _progress(description: str, total: int | None) -> Progress:
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database (DATABASE_URL) to the latest schema."""
    from musicspace_shared.db.migrate import upgrade

    upgrade(CommonSettings().database_url)
    console.print("[green]database at head")


async def _import(kind: str, path: Path, on_error: str) -> dict[str, Any]:
    from musicspace_cli import importer
    from musicspace_shared.db.engine import make_engine

    engine = make_engine(CommonSettings())
    try:
        with _progress(f"importing {kind}", None) as bar:
            task = bar.add_task(kind, total=None)
            advance = lambda n: bar.advance(task, n)  # noqa: E731
            func = {
                "catalog": importer.import_catalog,
                "playlists": importer.import_playlists,
                "interactions": importer.import_interactions,
            }[kind]
            report = await func(engine, path, on_error=on_error, progress=advance)
    finally:
        await engine.dispose()
    for line, message in report.skipped[:50]:
        console.print(f"[yellow]skipped line {line}: {message}")
    if report.skipped_total > 50:
        console.print(f"[yellow]... and {report.skipped_total - 50} more")
    return report.as_dict()


def _import_command(kind: str, path: Path, on_error: str, as_json: bool) -> None:
    from musicspace_cli.importer import ImportRejected

    if on_error.lower() not in ("skip", "reject"):
        raise typer.BadParameter("--on-error must be skip or reject")
    if not path.is_file():
        raise typer.BadParameter(f"no such file: {path}")
    try:
        result = _run(lambda: _import(kind, path, on_error.lower()))
    except ImportRejected as exc:
        for line, message in exc.errors[:50]:
            console.print(f"[red]line {line}: {message}")
        console.print(
            f"[red]rejected: {exc.total} bad row(s); nothing was written (use --on-error skip to import the good rows)"
        )
        raise typer.Exit(2) from exc
    _emit(result, as_json)


@import_app.command("catalog")
def import_catalog(file: Path, on_error: OnError = "reject", as_json: JsonFlag = False) -> None:
    """Import tracks from a file with the columns of catalog.csv.gz."""
    _import_command("catalog", file, on_error, as_json)


@import_app.command("playlists")
def import_playlists(file: Path, on_error: OnError = "reject", as_json: JsonFlag = False) -> None:
    """Import playlists (each becomes a user with its tracks as PMS tracks)."""
    _import_command("playlists", file, on_error, as_json)


@import_app.command("interactions")
def import_interactions(
    file: Path, on_error: OnError = "reject", as_json: JsonFlag = False
) -> None:
    """Plays, likes and skips: user_ref,track_id,play_count,like_score,skip_count[,last_played_at].

    user_ref is the playlist id a playlists import created the user from."""
    _import_command("interactions", file, on_error, as_json)


@import_app.command("demo")
def import_demo(as_json: JsonFlag = False) -> None:
    """Import the bundled demo catalog and playlists."""
    _import_command("catalog", DEMO_CATALOG, "skip", as_json)
    _import_command("playlists", DEMO_PLAYLISTS, "skip", as_json)


def _train(family: str) -> dict[str, Any]:
    import importlib

    module = importlib.import_module(f"musicspace_{family}.training")
    return _run(lambda: module.train_global_from_db())


@train_app.command("m1")
def train_m1(as_json: JsonFlag = False) -> None:
    """Train m1's global model (M1/audio_predictor.pkl)."""
    _emit(_train("m1"), as_json)


@train_app.command("m2")
def train_m2(as_json: JsonFlag = False) -> None:
    """Train m2's text-to-audio-feature models (M2/tfidf_gbr_models.pkl)."""
    _emit(_train("m2"), as_json)


@train_app.command("m3")
def train_m3(as_json: JsonFlag = False) -> None:
    """Train m3's global CatBoost ranker (M3/<name>.cbm)."""
    _emit(_train("m3"), as_json)


@index_app.command("rebuild")
def index_rebuild(as_json: JsonFlag = False) -> None:
    """Rebuild the llm search index from the DB."""
    from musicspace_llm.indexing import rebuild_from_db

    _emit(_run(rebuild_from_db), as_json)


CatalogOpt = Annotated[
    Path, typer.Option("--catalog", help="catalog file (columns of catalog.csv.gz)")
]


@eval_app.command("features")
def eval_features(
    truth: Annotated[
        Path, typer.Option("--truth", help="track_id,track_name,track_artist,genre,<9 features>")
    ],
    catalog: CatalogOpt = DEMO_CATALOG,
    as_json: JsonFlag = False,
) -> None:
    """m2's feature predictions on FILE against global/genre/artist means."""
    from musicspace_cli.eval_features import run

    _emit(run(catalog=catalog, truth=truth), as_json)


@eval_app.command("playlists")
def eval_playlists(
    playlists: Annotated[
        Path, typer.Option("--playlists", help="columns of playlists.csv.gz")
    ] = DEMO_PLAYLISTS,
    catalog: CatalogOpt = DEMO_CATALOG,
    models: Annotated[
        str | None,
        typer.Option(
            "--models", help="comma-separated subset, e.g. m1,implicit_als (default: all)"
        ),
    ] = None,
    save_rankings: Annotated[
        Path | None,
        typer.Option(
            "--save-rankings",
            help="also write every model's rankings and the holdout (JSON): tune the blend "
            "(RECOMMEND_*) on them without training again",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """m1, m2, m3, their blend (/api/recommend) and baselines on held-out halves of playlists."""
    from musicspace_cli.eval_playlists import run

    chosen = [name.strip() for name in models.split(",") if name.strip()] if models else None
    rankings: dict[str, Any] = {}
    try:
        result = run(catalog=catalog, playlists=playlists, models=chosen, rankings=rankings)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if save_rankings is not None:
        save_rankings.write_text(json.dumps(rankings))
    _emit(result, as_json)


@eval_app.command("search")
def eval_search(
    queries: Annotated[
        Path,
        typer.Option(
            "--queries",
            help="JSON lines like search_queries_dev.jsonl or search_queries_v2_dev.jsonl",
        ),
    ],
    catalog: CatalogOpt = DEMO_CATALOG,
    as_json: JsonFlag = False,
) -> None:
    """llm search against a keyword TF-IDF baseline: p@10 per language and kind, known-item MRR@10 and hit@1."""
    from musicspace_cli.eval_search import run

    _emit(run(catalog=catalog, queries=queries), as_json)


@app.command("generate")
def generate(
    out: Annotated[Path, typer.Option("--out", help="folder for the three .csv.gz files")],
    tracks: Annotated[int, typer.Option(min=1, help="catalog tracks")] = 100_000,
    users: Annotated[int, typer.Option(min=0, help="users (one playlist each)")] = 10_000,
    interactions: Annotated[
        int | None, typer.Option(min=0, help="play/like/skip rows (default: 100 per user)")
    ] = None,
    seed: Annotated[int, typer.Option(help="the same seed writes the same bytes")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """A synthetic catalog, users and interactions drawn from the demo data's distributions.

    Import them with `musicspace import catalog|playlists|interactions` (in that order)."""
    from musicspace_cli.generate import Sizes
    from musicspace_cli.generate import generate as write

    sizes = Sizes(tracks, users, users * 100 if interactions is None else interactions, seed)
    with _progress("generating", None) as bar:
        bar.add_task("generating", total=None)
        result = write(out, sizes)
    _emit(result, as_json)


@models_app.command("usage")
def models_usage(as_json: JsonFlag = False) -> None:
    """Bytes and counts of models per family under MODEL_ROOT."""
    from musicspace_shared import model_ops

    _emit(model_ops.usage(CommonSettings().model_root), as_json)


@models_app.command("cleanup")
def models_cleanup(
    older_than_days: Annotated[
        int, typer.Option(min=1, help="remove user models unused for this many days")
    ] = 90,
    dry_run: Annotated[
        bool, typer.Option("--dry-run/--apply", help="list only (default) or remove")
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """Remove user models unused for N days (by recorded last use); dry run by default."""
    from musicspace_shared import model_ops

    result = model_ops.cleanup(
        CommonSettings().model_root, older_than_days=older_than_days, dry_run=dry_run
    )
    _emit(result, as_json)


@report_app.command("online")
def report_online(
    since: Annotated[
        str, typer.Option(help="window start: a duration before now (30m, 24h, 7d) or ISO time")
    ] = "7d",
    until: Annotated[
        str | None, typer.Option(help="window end (exclusive), as --since; default now")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Click-through and play-through of recommendations per source, route and A/B arm."""
    from datetime import UTC, datetime

    from musicspace_cli.report_online import parse_time, report
    from musicspace_shared.db.engine import make_engine

    now = datetime.now(UTC)
    try:
        start = parse_time(since, now=now)
        end = parse_time(until, now=now) if until else now
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if start >= end:
        raise typer.BadParameter(f"--since ({start.isoformat()}) must be before --until")

    async def read() -> dict[str, Any]:
        engine = make_engine(CommonSettings())
        try:
            return await report(engine, since=start, until=end)
        finally:
            await engine.dispose()

    result = _run(read)
    if as_json:
        _emit(result, True)
        return
    _print_report(result)


def _print_report(result: dict[str, Any]) -> None:
    from rich.table import Table

    out = Console(width=max(Console().width, 110))  # a pipe is 80 wide: keep the columns whole
    window = result["window"]
    out.print(f"events from {window['since']} to {window['until']}")
    for section in ("by_source", "by_route", "by_arm", "by_arm_and_source"):
        table = Table(title=section.replace("_", " "))
        columns = ("impressions", "clicks", "plays", "likes", "skips")
        for column in ("", *columns, "click_through", "play_through"):
            table.add_column(column, justify="left" if not column else "right", no_wrap=True)
        for name, row in result[section].items():
            rates = [
                ("-" if row[c] is None else f"{row[c]:.1%}")
                for c in ("click_through", "play_through")
            ]
            table.add_row(name, *(str(row[c]) for c in columns), *rates)
        out.print(table)


if __name__ == "__main__":
    app()
