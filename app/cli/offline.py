"""``verbcal fit`` and ``verbcal report``: calibration of a data file, no server or database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.common import EXIT_BAD_INPUT, fail
from app.offline.files import DataFileError, parse_labels_option, read_distributions
from app.offline.fitting import calibration_file_content, fit_with_holdout, parse_eps
from calibrators.report import METRIC_TITLES

# Below this size a file reads in well under a second: no progress bar.
PROGRESS_MIN_BYTES = 4 << 20


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
        fail(str(exc), EXIT_BAD_INPUT)


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


BRIER_TERMS = ("reliability", "resolution", "uncertainty")


def _extra_values(report: dict, side: str) -> dict[str, float | None]:
    brier = report["decompositions"]["top_label"][side]["brier"]
    return {
        "smooth ECE": report["smooth_ece"][side]["smooth_ece"],
        "AURC": report["aurc"][side]["aurc"],
        **{f"Brier {term}": brier[term] for term in BRIER_TERMS},
    }


def format_extras(report: dict) -> list[str]:
    """Smooth ECE, AURC and the Brier decomposition (top-label bins): raw (→ calibrated)."""
    if "smooth_ece" not in report:
        return []
    sides = ["raw"] + (["calibrated"] if report["smooth_ece"]["calibrated"] else [])
    values = [_extra_values(report, side) for side in sides]
    width = max(len(title) for title in values[0])
    heading = " → ".join(sides) + "; Brier terms over top-label bins"
    return [f"beyond binned ECE ({heading}):"] + [
        f"{title:<{width}}  " + " → ".join(_number(v[title]) for v in values) for title in values[0]
    ]


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
        *format_extras(report),
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
        fail(f"cannot write {path}: {exc.strerror}", EXIT_BAD_INPUT)


FileArgument = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or JSONL file.")
]
LabelsOption = Annotated[
    str | None, typer.Option("--labels", help="Class labels in order, comma-separated: a,b,c.")
]


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
        fail(str(exc), EXIT_BAD_INPUT)
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
        fail(str(exc), EXIT_BAD_INPUT)
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
    for line in [*format_metrics(result.report), *format_extras(result.report)]:
        typer.echo(line)
    _write_json(output, calibration_file_content(calibrator, label_order))
    typer.echo(f"\nwrote {output}")


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
    from calibrators.report_extras import add_report_extras

    try:
        label_order = parse_labels_option(labels)
    except ValueError as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    calibrator = None
    if calibration is not None:
        try:
            content = json.loads(calibration.read_text(encoding="utf-8"))
            calibrator = calibrator_from_dict(content)
        except (OSError, ValueError) as exc:
            fail(f"{calibration}: not a calibrator file: {exc}", EXIT_BAD_INPUT)
        # The fit's class order wins, so columns line up with what the calibrator learned.
        if label_order is None and isinstance(content.get("labels"), list):
            label_order = [str(label) for label in content["labels"]]
    P, y, label_order = _load_data(file, label_order)
    try:
        result = calibration_report(
            P, y, label_order, calibrator=calibrator, n_bins=n_bins, binning=binning
        )
        Q = None if calibrator is None else calibrator.transform(P)
        add_report_extras(result, P, y, Q, n_bins=n_bins)
    except ValueError as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    typer.echo(format_report(result))
    if json_out is not None:
        _write_json(json_out, result)
        typer.echo(f"\nwrote {json_out}")
