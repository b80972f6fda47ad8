"""LLM elicitation: config, typed errors, the robust client, and the simulated LLM.

``synthetic`` (a labelled dataset with known posteriors) and ``simulator`` (an OpenAI-compatible
server built on it) are imported on demand: ``from app.llm import simulator``.
"""

from app.llm.client import (
    Elicitation,
    LLMClient,
    RetryPolicy,
    SampleRecord,
    aclose_endpoint_clients,
)
from app.llm.config import LLMConfig
from app.llm.errors import LLMError

__all__ = [
    "Elicitation",
    "LLMClient",
    "LLMConfig",
    "LLMError",
    "RetryPolicy",
    "SampleRecord",
    "aclose_endpoint_clients",
]
