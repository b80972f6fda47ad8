"""A simulated, OpenAI-compatible LLM that verbalizes a known posterior with a set miscalibration.

``settings`` (how it miscalibrates, formats and misbehaves), ``answers`` (the generative model
and the answer styles: pure functions, no HTTP) and ``server`` (the HTTP app, fault injection and
the runners). Run it with ``verbcal simulate-llm --port 8010``. It is always labelled as
simulated: model ids contain "simulated" and every completion carries
``"system_fingerprint": "verbcal-simulated"``.
"""

from app.llm.simulator.answers import (
    ANSWER_STYLES,
    NOT_UNDERSTOOD_ANSWER,
    format_answer,
    reasoning_for,
    round_to_grid,
    stated_distribution,
    to_decimals,
    true_distribution,
)
from app.llm.simulator.server import (
    FAULT_KINDS,
    JSON_SCHEMA_REJECTION,
    create_simulator_app,
    running_simulator,
    serve,
)
from app.llm.simulator.settings import SIMULATED_MODEL, SYSTEM_FINGERPRINT, SimulatorSettings

__all__ = [
    "ANSWER_STYLES",
    "FAULT_KINDS",
    "JSON_SCHEMA_REJECTION",
    "NOT_UNDERSTOOD_ANSWER",
    "SIMULATED_MODEL",
    "SYSTEM_FINGERPRINT",
    "SimulatorSettings",
    "create_simulator_app",
    "format_answer",
    "reasoning_for",
    "round_to_grid",
    "running_simulator",
    "serve",
    "stated_distribution",
    "to_decimals",
    "true_distribution",
]
