"""The ``verbcal`` command: serve, worker, migrate, keys, llm check, simulate-llm, demo, offline
fit/report.

Exit codes: 0 success, 1 a failed precondition (database not migrated or unreachable, unknown
key), 2 bad input (usage errors, bad data files, invalid options).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings
from app.db import create_db_engine, create_session_factory, transaction
from app.migrate import current_revision, head_revision, upgrade_to_head
from app.models import ApiKey, utcnow
from app.offline import (
    DataFileError,
    calibration_file_content,
    fit_with_holdout,
    parse_eps,
    parse_labels_option,
    read_distributions,
)
from calibrators.report import METRIC_TITLES

EXIT_PRECONDITION = 1
EXIT_BAD_INPUT = 2
# Below this size a file reads in well under a second: no progress bar.
PROGRESS_MIN_BYTES = 4 << 20

cli = typer.Typer(
    name="verbcal",
    help="Calibrated probabilities from the distributions LLMs verbalize.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_cli = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
llm_cli = typer.Typer(help="Check a task's LLM server.", no_args_is_help=True)
cli.add_typer(llm_cli, name="llm")


def main() -> None:
    """Console-script entry point (``verbcal``)."""
    cli()


def _fail(message: str, code: int = EXIT_PRECONDITION) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _database_url_for_humans(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _require_migrated(settings: Settings) -> Engine:
    """An engine on a database at the migrations' head; exits 1 with advice otherwise."""
    engine = create_db_engine(settings.database_url)
    where = _database_url_for_humans(settings.database_url)
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        _fail(f"cannot reach the database {where}: {reason}")
    head = head_revision()
    if revision != head:
        engine.dispose()
        state = "is not migrated" if revision is None else f"is at revision {revision}"
        _fail(
            f"the database {where} {state}; the code needs revision {head}. "
            "Run `verbcal migrate` first (it is never done implicitly)."
        )
    return engine


# ----------------------------------------------------------------------------- service commands


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    no_worker: Annotated[
        bool,
        typer.Option("--no-worker", help="Do not run the embedded job worker in this process."),
    ] = False,
) -> None:
    """Run the API and dashboard (refuses an unmigrated database)."""
    import uvicorn

    from app.observability import configure_logging

    if no_worker:
        # The app is built by uvicorn (possibly in worker processes) from the environment.
        os.environ["VERBCAL_EMBEDDED_WORKER"] = "false"
    settings = Settings()
    _require_migrated(settings).dispose()
    configure_logging(settings)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,  # our root handler formats uvicorn's records too
        log_level=settings.log_level.lower(),
        access_log=False,  # the app writes its own access line (route template, request id)
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


@cli.command()
def worker() -> None:
    """Run a job worker until SIGTERM/SIGINT (use with PostgreSQL; any number of them)."""
    from app.jobs.worker import run_worker_process
    from app.observability import configure_logging

    settings = Settings()
    _require_migrated(settings).dispose()
    configure_logging(settings)
    run_worker_process(settings)


@cli.command()
def migrate() -> None:
    """Apply pending database migrations and print the current revision."""
    settings = Settings()
    where = _database_url_for_humans(settings.database_url)
    try:
        upgrade_to_head(settings.database_url)
        engine = create_db_engine(settings.database_url)
        try:
            revision = current_revision(engine)
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        _fail(f"migrating {where} failed: {reason}")
    typer.echo(f"database {where} is at revision {revision} (head)")


# --------------------------------------------------------------------------------------- keys


@keys_cli.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin (everything) or app (calibrate, feedback).")],
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")] = "",
) -> None:
    """Create an API key and print it once."""
    from app.services.keys import ROLES, create_key

    if role not in ROLES:
        _fail(f"--role must be one of {', '.join(ROLES)}; got {role!r}", EXIT_BAD_INPUT)
    engine = _require_migrated(Settings())
    try:
        with transaction(create_session_factory(engine)) as session:
            row, secret = create_key(session, role, name)  # type: ignore[arg-type]
            prefix, row_name = row.prefix, row.name
    finally:
        engine.dispose()
    typer.echo(secret)
    typer.secho(
        f"created {role} key {prefix!r} ({row_name}). Store it now: it will not be shown again.",
        fg=typer.colors.YELLOW,
        err=True,
    )


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "never"


@keys_cli.command("list")
def keys_list(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
) -> None:
    """List keys: prefix, name, role, created, last used (never the key or its hash)."""
    engine = _require_migrated(Settings())
    try:
        with transaction(create_session_factory(engine)) as session:
            query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
            if not all_keys:
                query = query.where(ApiKey.revoked_at.is_(None))
            rows = [
                (
                    key.prefix,
                    key.name,
                    key.role,
                    _when(key.created_at),
                    _when(key.last_used_at),
                    "revoked" if key.revoked_at else "active",
                )
                for key in session.scalars(query)
            ]
    finally:
        engine.dispose()
    if not rows:
        typer.echo("no keys; create one with `verbcal keys create --role admin`")
        return
    header = ("PREFIX", "NAME", "ROLE", "CREATED", "LAST USED", "STATUS")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


@keys_cli.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="The key's prefix (keys list).")]):
    """Revoke a key: new logins and lookups refuse it at once; a running API process that saw
    it in the last VERBCAL_AUTH_CACHE_TTL_S seconds (default 10) accepts it until then."""
    engine = _require_migrated(Settings())
    try:
        with transaction(create_session_factory(engine)) as session:
            matches = list(
                session.scalars(
                    select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
                )
            )
            if len(matches) == 1:
                matches[0].revoked_at = utcnow()
    finally:
        engine.dispose()
    if not matches:
        _fail(f"no active key with prefix {prefix!r}")
    if len(matches) > 1:
        _fail(f"{len(matches)} active keys share the prefix {prefix!r}; nothing revoked")
    typer.echo(f"revoked key {prefix!r}")


# ----------------------------------------------------------------------------- simulator, demo


@cli.command("simulate-llm")
def simulate_llm(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8010,
    t0: Annotated[float, typer.Option(help="Overconfidence: states posterior**t0.")] = 2.0,
    rounding: Annotated[float, typer.Option(help="Rounding grid; 0 = none.")] = 0.05,
    decimals: Annotated[int, typer.Option(help="Most decimals printed.")] = 4,
    style: Annotated[
        str,
        typer.Option(
            help="json, fenced, prose, percent, reasoning_answer, broken_quote (the styles of "
            "real models' answers) or mixed."
        ),
    ] = "json",
    noise: Annotated[float, typer.Option(help="Log-prob noise std at temperature 1.")] = 0.15,
    delay: Annotated[float, typer.Option(help="Seconds before every answer.")] = 0.0,
    rate_429: Annotated[float, typer.Option(help="Share of 429 answers.")] = 0.0,
    retry_after: Annotated[float, typer.Option(help="Retry-After of 429s (s).")] = 1.0,
    rate_500: Annotated[float, typer.Option(help="Share of 500 answers.")] = 0.0,
    rate_malformed: Annotated[float, typer.Option(help="Share of cut-off JSON.")] = 0.0,
    rate_missing_label: Annotated[float, typer.Option(help="Share missing a label.")] = 0.0,
    rate_prose: Annotated[float, typer.Option(help="Share of answers without numbers.")] = 0.0,
    reject_n: Annotated[
        bool, typer.Option("--reject-n/--accept-n", help="400 for n > 1, like vLLM.")
    ] = True,
    reject_json_schema: Annotated[
        bool, typer.Option(help="HTTP 500 to json_schema, like llama-cpp-python.")
    ] = False,
    slow: Annotated[float, typer.Option(help="Wait of the 'slow' fault (s).")] = 2.0,
    hang: Annotated[float, typer.Option(help="Wait of the 'timeout' fault (s).")] = 60.0,
    fault_seed: Annotated[int, typer.Option(help="Seed of the random faults.")] = 0,
) -> None:
    """Run the simulated OpenAI-compatible LLM (always labelled as simulated)."""
    from pydantic import ValidationError

    from app.llm import simulator

    try:
        settings = simulator.SimulatorSettings(
            t0=t0,
            rounding=rounding,
            decimals=decimals,
            style=style,
            noise=noise,
            delay_s=delay,
            rate_429=rate_429,
            retry_after_s=retry_after,
            rate_500=rate_500,
            rate_malformed=rate_malformed,
            rate_missing_label=rate_missing_label,
            rate_prose=rate_prose,
            reject_n=reject_n,
            reject_json_schema=reject_json_schema,
            slow_s=slow,
            hang_s=hang,
            fault_seed=fault_seed,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        _fail(problems, EXIT_BAD_INPUT)
    typer.echo(f"simulated LLM at http://{host}:{port}/v1 (model {settings.model})", err=True)
    simulator.serve(host, port, settings)


@llm_cli.command("check")
def llm_check(task: Annotated[str, typer.Argument(help="The task whose LLM to check.")]) -> None:
    """Probe the task's LLM server: each structured-output mode, seed and n > 1.

    Sends about five short real requests from this process (the API key variable must be set
    here) and recommends a mode. Exits 1 when the server accepts no mode; a server that accepts
    a mode but whose model's answer does not parse is reported, not failed. Never prints a
    secret.
    """
    import asyncio

    from app.errors import ServiceError
    from app.llm.client import aclose_endpoint_clients
    from app.services.llm_check import plan_check, run_check

    settings = Settings()
    engine = _require_migrated(settings)
    try:
        with transaction(create_session_factory(engine)) as session:
            plan = plan_check(session, task, settings.llm_policy)
    except ServiceError as exc:
        _fail(exc.message)
    finally:
        engine.dispose()

    async def check():
        try:
            return await run_check(plan)
        finally:
            await aclose_endpoint_clients()

    typer.echo(f"checking {plan.config.model} at {plan.config.base_url} ...", err=True)
    report = asyncio.run(check())
    typer.echo(format_server_check(report))
    if report.recommended_mode is None:
        raise typer.Exit(EXIT_PRECONDITION)


def format_server_check(report) -> str:
    """The check as a table of probes and a recommendation."""
    rows = [("probe", "accepted", "latency", "parse", "detail")]
    for probe in [*report.modes, report.seed, report.n]:
        accepted = "yes" if probe.accepted else f"no ({probe.status_code or '-'})"
        latency = "-" if probe.latency_ms is None else f"{probe.latency_ms:,.0f} ms"
        parse = probe.parse_status or "-"
        detail = probe.detail or probe.error or probe.parse_reason or ""
        rows.append((probe.name, accepted, latency, parse, detail))
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) + f"  {row[4]}"
        for row in rows
    ]
    for probe in report.modes:
        if probe.answer_excerpt:
            lines.append(f"answer in {probe.name}: {probe.answer_excerpt!r}")
    lines.append(f"recommendation: {report.recommendation}")
    return "\n".join(line.rstrip() for line in lines)


@cli.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface the API and dashboard bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the API and dashboard.")] = 8000,
    llm_port: Annotated[int, typer.Option(help="Port of the simulated LLM.")] = 8010,
    examples: Annotated[int, typer.Option(min=20, help="Synthetic tickets in the demo.")] = 600,
) -> None:
    """Demo: migrate, start the simulated LLM, elicit, fit, serve until Ctrl-C (`make run`)."""
    from app.demo import DemoError, run_demo

    try:
        run_demo(host=host, port=port, llm_port=llm_port, n_examples=examples)
    except DemoError as exc:
        _fail(str(exc))


# ------------------------------------------------------------------------------ offline fit/report


def _read_file(path: Path, labels: list[str] | None):
    """``read_distributions`` with a progress bar on a terminal for large files."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    console = Console(stderr=True)
    size = path.stat().st_size if path.is_file() else 0
    if size < PROGRESS_MIN_BYTES or not console.is_terminal:
        return read_distributions(path, labels)
    columns = (TextColumn("reading {task.description}"), BarColumn(), DownloadColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(path.name, total=size)
        return read_distributions(
            path, labels, on_progress=lambda chars: progress.advance(task, chars)
        )


def _load_data(path: Path, labels: list[str] | None):
    try:
        return _read_file(path, labels)
    except DataFileError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)


def _number(value: Any, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _metric_with_ci(section: dict, metric: str) -> str:
    value = _number(section["metrics"].get(metric))
    ci = section.get("ci", {}).get(metric)
    if ci and ci.get("lower") is not None and ci.get("upper") is not None:
        value += f" [{ci['lower']:.4f}, {ci['upper']:.4f}]"
    return value


REPORT_METRICS = ("ece", "mce", "nll", "brier", "accuracy", "mean_entropy")


def format_metrics(report: dict) -> list[str]:
    """Raw (and calibrated) metrics, with bootstrap CIs where the report has them."""
    sections = [("raw", report["raw"])]
    if report.get("calibrated"):
        sections.append(("calibrated", report["calibrated"]))
    width = max(len(METRIC_TITLES[metric]) for metric in REPORT_METRICS)
    level = round(100 * (1 - report["conventions"]["bootstrap"]["alpha"]))
    lines = [f"{'':{width}}  " + "  ".join(f"{name:<26}" for name, _ in sections).rstrip()]
    for metric in REPORT_METRICS:
        title = METRIC_TITLES[metric]
        cells = [f"{_metric_with_ci(section, metric):<26}" for _, section in sections]
        lines.append(f"{title:<{width}}  " + "  ".join(cells).rstrip())
    lines.append(f"(brackets: {level}% bootstrap intervals)")
    return lines


def format_reliability(name: str, rows: list[dict]) -> list[str]:
    lines = [
        f"reliability ({name}): non-empty bins",
        "  bin               count   conf    acc    gap",
    ]
    for row in rows:
        if not row["count"]:
            continue
        span = f"({row['lower']:.3f}, {row['upper']:.3f}]"
        lines.append(
            f"  {span:<16} {row['count']:>6}  {_number(row['confidence'], 3)}  "
            f"{_number(row['accuracy'], 3)}  {row['gap']:+.3f}"
        )
    return lines


def format_report(report: dict) -> str:
    counts = ", ".join(f"{label}={count}" for label, count in report["class_counts"].items())
    conventions = report["conventions"]
    lines = [
        f"rows: {report['n']}  classes: {counts}",
        f"binning: {conventions['binning']}, {conventions['n_bins']} bins",
        "",
        *format_metrics(report),
        "",
        *format_reliability("raw", report["raw"]["reliability"]),
    ]
    if report.get("calibrated"):
        lines += ["", *format_reliability("calibrated", report["calibrated"]["reliability"])]
    for note in report.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _write_json(path: Path, content: dict) -> None:
    try:
        with path.open("w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=2, allow_nan=False)
            handle.write("\n")
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror}", EXIT_BAD_INPUT)


FileArgument = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or JSONL file.")
]
LabelsOption = Annotated[
    str | None, typer.Option("--labels", help="Class labels in order, comma-separated: a,b,c.")
]


@cli.command()
def fit(
    file: FileArgument,
    labels: LabelsOption = None,
    objective: Annotated[str, typer.Option(help="nll, brier or spherical.")] = "nll",
    eps: Annotated[str, typer.Option(help="Inverse-softmax eps: 'auto' or a number.")] = "auto",
    holdout: Annotated[float, typer.Option(help="Held-out share for the metrics.")] = 0.3,
    seed: Annotated[int, typer.Option(help="Seed of the held-out split.")] = 0,
    refit: Annotated[
        bool,
        typer.Option(
            help="Write the calibrator refitted on every row (metrics stay held-out); "
            "--no-refit writes the one fitted without the held-out rows."
        ),
    ] = True,
    output: Annotated[Path, typer.Option(help="Where to write the calibrator JSON.")] = Path(
        "calibration.json"
    ),
) -> None:
    """Fit temperature scaling on a file of distributions and labels (no server)."""
    try:
        label_order = parse_labels_option(labels)
        eps_value = parse_eps(eps)
    except ValueError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    P, y, label_order = _load_data(file, label_order)
    try:
        result = fit_with_holdout(
            P,
            y,
            label_order,
            objective=objective,
            eps=eps_value,
            holdout=holdout,
            seed=seed,
            refit=refit,
        )
    except ValueError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    calibrator = result.calibrator
    typer.echo(f"rows: {len(y)} (fit {result.fit_rows.size}, held out {result.held_out_rows.size})")
    served = (
        f"refitted on all {len(y)} rows" if result.refit else "fitted without the held-out rows"
    )
    typer.echo(f"written calibrator: {served}")
    typer.echo(f"labels: {', '.join(label_order)}")
    typer.echo(f"temperature: {calibrator.temperature_:.6f}")
    typer.echo(f"eps: {calibrator.eps_:g}")
    typer.echo(f"objective: {calibrator.objective_}")
    if not calibrator.converged_:
        typer.secho("warning: the fit did not converge", fg=typer.colors.YELLOW, err=True)
    if calibrator.at_bound_:
        typer.secho(
            "warning: the temperature sits on a search bound", fg=typer.colors.YELLOW, err=True
        )
    typer.echo("")
    typer.echo("held-out metrics (raw → calibrated, calibrator fitted without these rows):")
    for line in format_metrics(result.report):
        typer.echo(line)
    _write_json(output, calibration_file_content(calibrator, label_order))
    typer.echo(f"\nwrote {output}")


@cli.command()
def report(
    file: FileArgument,
    calibration: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Calibrator JSON written by `fit`."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option(help="Write the full report JSON here.")] = None,
    labels: LabelsOption = None,
    n_bins: Annotated[int, typer.Option(min=1, help="Reliability bins.")] = 15,
    binning: Annotated[str, typer.Option(help="uniform or quantile.")] = "uniform",
) -> None:
    """Calibration report (ECE/MCE/NLL/Brier with CIs, reliability) of a file (no server)."""
    from calibrators import calibration_report, calibrator_from_dict

    try:
        label_order = parse_labels_option(labels)
    except ValueError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    calibrator = None
    if calibration is not None:
        try:
            content = json.loads(calibration.read_text(encoding="utf-8"))
            calibrator = calibrator_from_dict(content)
        except (OSError, ValueError) as exc:
            _fail(f"{calibration}: not a calibrator file: {exc}", EXIT_BAD_INPUT)
        # The fit's class order wins, so columns line up with what the calibrator learned.
        if label_order is None and isinstance(content.get("labels"), list):
            label_order = [str(label) for label in content["labels"]]
    P, y, label_order = _load_data(file, label_order)
    try:
        result = calibration_report(
            P, y, label_order, calibrator=calibrator, n_bins=n_bins, binning=binning
        )
    except ValueError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    typer.echo(format_report(result))
    if json_out is not None:
        _write_json(json_out, result)
        typer.echo(f"\nwrote {json_out}")


if __name__ == "__main__":
    main()
