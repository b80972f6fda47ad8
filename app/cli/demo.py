"""``verbcal demo``: the whole service on the simulated LLM (``make run``)."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import fail


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
        fail(str(exc))
