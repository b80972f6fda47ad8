"""``verbcal llm check`` (probe a task's LLM server) and ``verbcal simulate-llm``."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import EXIT_BAD_INPUT, EXIT_PRECONDITION, fail, require_migrated
from app.config import Settings
from app.db import create_session_factory, transaction

llm_cli = typer.Typer(help="Check a task's LLM server.", no_args_is_help=True)


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
    engine = require_migrated(settings)
    try:
        with transaction(create_session_factory(engine)) as session:
            plan = plan_check(session, task, settings.llm_policy)
    except ServiceError as exc:
        fail(exc.message)
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
        fail(problems, EXIT_BAD_INPUT)
    typer.echo(f"simulated LLM at http://{host}:{port}/v1 (model {settings.model})", err=True)
    simulator.serve(host, port, settings)
