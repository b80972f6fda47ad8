"""How the simulated LLM miscalibrates, formats and misbehaves."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SIMULATED_MODEL = "verbcal-simulated-llm"
SYSTEM_FINGERPRINT = "verbcal-simulated"

AnswerStyle = Literal[
    "json", "fenced", "prose", "percent", "reasoning_answer", "broken_quote", "mixed"
]


class SimulatorSettings(BaseModel):
    """How the simulated LLM miscalibrates, formats and misbehaves (see ``server`` for faults)."""

    model_config = ConfigDict(extra="forbid")

    t0: float = Field(default=2.0, gt=0, description="States posterior**t0; > 1 overconfident.")
    rounding: float = Field(default=0.05, ge=0, le=0.5, description="Grid; 0 = no rounding.")
    decimals: int = Field(default=4, ge=1, le=8, description="Most decimals printed.")
    style: AnswerStyle = "json"
    noise: float = Field(default=0.15, ge=0, description="Log-prob noise std at temperature 1.")
    delay_s: float = Field(default=0.0, ge=0, description="Wait before every answer.")
    rate_429: float = Field(default=0.0, ge=0, le=1)
    retry_after_s: float = Field(default=1.0, ge=0, description="Retry-After sent with 429s.")
    rate_500: float = Field(default=0.0, ge=0, le=1)
    rate_malformed: float = Field(default=0.0, ge=0, le=1)
    rate_missing_label: float = Field(default=0.0, ge=0, le=1)
    rate_prose: float = Field(default=0.0, ge=0, le=1)
    reject_n: bool = Field(default=True, description="400 for n > 1, like vLLM and ollama.")
    reject_json_schema: bool = Field(
        default=False,
        description="HTTP 500 to response_format json_schema, like llama-cpp-python's server.",
    )
    slow_s: float = Field(default=2.0, ge=0, description="Wait of the 'slow' fault.")
    hang_s: float = Field(default=60.0, ge=0, description="Wait of the 'timeout' fault.")
    fault_seed: int = 0
    model: str = SIMULATED_MODEL

    @model_validator(mode="after")
    def _rates_partition(self) -> SimulatorSettings:
        if sum(self.fault_rates().values()) > 1 + 1e-9:
            raise ValueError("the rate_* settings must sum to at most 1")
        if "simulated" not in self.model:
            raise ValueError("the simulated model's id must contain 'simulated'")
        return self

    def fault_rates(self) -> dict[str, float]:
        """The random faults and their rates, in the order of the seeded draw."""
        return {
            "429": self.rate_429,
            "500": self.rate_500,
            "malformed": self.rate_malformed,
            "missing_label": self.rate_missing_label,
            "prose": self.rate_prose,
        }
