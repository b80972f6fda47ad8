"""The ``verbcal`` command: serve, worker, migrate, keys, llm check, simulate-llm, demo, offline
fit/report; one module per command group, registered here in the order ``--help`` lists them.

Exit codes (``app.cli.common``): 0 success, 1 a failed precondition (database not migrated or
unreachable, unknown key), 2 bad input (usage errors, bad data files, invalid options).
"""

from __future__ import annotations

import typer

from app.cli.demo import demo
from app.cli.keys import keys_cli
from app.cli.llm import llm_cli, simulate_llm
from app.cli.offline import fit, report
from app.cli.service import migrate, serve, worker

cli = typer.Typer(
    name="verbcal",
    help="Calibrated probabilities from the distributions LLMs verbalize.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
cli.command()(serve)
cli.command()(worker)
cli.command()(migrate)
cli.command("simulate-llm")(simulate_llm)
cli.command()(demo)
cli.command()(fit)
cli.command()(report)
cli.add_typer(keys_cli, name="keys")
cli.add_typer(llm_cli, name="llm")


def main() -> None:
    """Console-script entry point (``verbcal``)."""
    cli()


__all__ = ["cli", "main"]
