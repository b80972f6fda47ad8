"""A simulated, OpenAI-compatible LLM that verbalizes a known posterior with a set miscalibration.

Run it with ``verbcal simulate-llm --port 8010`` or ``python -m app.llm.simulator --port 8010``.
It is always labelled as simulated: model ids contain "simulated" and every completion carries
``"system_fingerprint": "verbcal-simulated"``.

How it answers ``POST /v1/chat/completions``:

1. It recognises the default prompt with ``prompts.recover_prompt_fields`` and reads the text and
   labels from it. Any other prompt gets the prose answer ``NOT_UNDERSTOOD_ANSWER`` (no JSON), so
   callers see a failed parse instead of a made-up distribution.
2. True distribution: for the ticket labels (any order/case) the exact Bayes posterior of
   ``app.llm.synthetic``; for other label sets a deterministic near-uniform pseudo-posterior
   drawn from a Dirichlet(5) seeded by a hash of (text, labels).
3. Miscalibration: it states ``posterior**t0`` renormalized. ``t0 > 1`` is overconfident and
   temperature scaling recovers T ≈ t0 (DESIGN.md's contract).
4. Sampling noise: when the request temperature is > 0, Gaussian noise with standard deviation
   ``noise * temperature`` is added to the log-probabilities. It is deterministic per
   (text, seed) when a seed is sent and random otherwise; temperature 0 is fully deterministic.
5. Rounding: each value is rounded to the ``rounding`` grid (0 = no rounding); if every value
   rounds to 0 the argmax gets all the mass; the result is renormalized and printed with at most
   ``decimals`` decimals by largest-remainder rounding, so the printed values sum to exactly 1.
6. Style: ``json`` (clean object), ``fenced`` (```json fence), ``prose`` (sentence, JSON,
   sentence), ``percent`` (values as "70%" strings) or ``mixed`` (one of those per text,
   deterministically). When the request asks for JSON via ``response_format`` the answer is
   clean JSON whatever the style, as a server with structured output would give.

Faults, for tests and demos. Per request, the first of these that is set wins: the header
``X-Sim-Fault``, the body field ``sim_fault`` (send it with ``extra_body``), a marker
``[sim-fault:KIND]`` anywhere in the messages (lets one text among many fail), else a seeded
random draw with the ``rate_*`` settings (deterministic in request order). Kinds: ``429`` (with
``Retry-After: retry_after_s``), ``500``, ``malformed`` (cut-off JSON), ``missing_label`` (the
least likely label is left out, the others renormalized), ``prose`` (an opinion with no
numbers), ``refuse`` (the message carries a ``refusal`` and no content, as OpenAI's structured
outputs do), ``slow`` (waits ``slow_s``) and ``timeout`` (waits ``hang_s``). ``X-Sim-Delay`` /
``sim_delay`` override ``delay_s``. Requests with ``n > 1`` get a 400 like vLLM or ollama when
``reject_n`` is set.

Simulator-only endpoints: ``GET /_sim/stats`` (request counts, current and maximum in-flight
requests, the last request bodies) and ``POST /_sim/reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.llm import synthetic
from prompts import recover_prompt_fields

SIMULATED_MODEL = "verbcal-simulated-llm"
SYSTEM_FINGERPRINT = "verbcal-simulated"
NOT_UNDERSTOOD_ANSWER = "I can't classify this: I only understand verbcal's default prompt."
FAULT_KINDS = (
    "429", "500", "malformed", "missing_label", "prose", "refuse", "slow", "timeout",
)  # fmt: skip
REFUSAL = "I'm sorry, but I can't help with classifying this text."
ANSWER_STYLES = ("json", "fenced", "prose", "percent")
_FAULT_MARKER = re.compile(r"\[sim-fault:([a-z_0-9]+)\]")
_CHARS_PER_TOKEN = 4
_RECENT_REQUESTS = 100

AnswerStyle = Literal["json", "fenced", "prose", "percent", "mixed"]


class SimulatorSettings(BaseModel):
    """How the simulated LLM miscalibrates, formats and misbehaves."""

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
    slow_s: float = Field(default=2.0, ge=0, description="Wait of the 'slow' fault.")
    hang_s: float = Field(default=60.0, ge=0, description="Wait of the 'timeout' fault.")
    fault_seed: int = 0
    model: str = SIMULATED_MODEL

    @model_validator(mode="after")
    def _rates_partition(self) -> SimulatorSettings:
        if sum(self._rates().values()) > 1 + 1e-9:
            raise ValueError("the rate_* settings must sum to at most 1")
        if "simulated" not in self.model:
            raise ValueError("the simulated model's id must contain 'simulated'")
        return self

    def _rates(self) -> dict[str, float]:
        return {
            "429": self.rate_429,
            "500": self.rate_500,
            "malformed": self.rate_malformed,
            "missing_label": self.rate_missing_label,
            "prose": self.rate_prose,
        }


# ---------------------------------------------------------------- the answer's distribution


def _text_hash(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def true_distribution(text: str, labels: Sequence[str]) -> np.ndarray:
    """The distribution the simulator treats as the truth for ``text`` over ``labels``."""
    try:
        return synthetic.posterior(text, labels)
    except ValueError:
        rng = np.random.default_rng(_text_hash("pseudo", text, *labels))
        return rng.dirichlet(np.full(len(labels), 5.0))


def round_to_grid(probabilities: np.ndarray, grid: float) -> np.ndarray:
    """Round to multiples of ``grid`` (0: unchanged), keep it a distribution (see module doc)."""
    if grid <= 0:
        return probabilities / probabilities.sum()
    rounded = np.round(probabilities / grid) * grid
    if rounded.sum() <= 0:
        rounded = np.zeros_like(probabilities)
        rounded[int(np.argmax(probabilities))] = 1.0
    return rounded / rounded.sum()


def stated_distribution(
    text: str,
    labels: Sequence[str],
    settings: SimulatorSettings,
    *,
    temperature: float = 0.0,
    seed: int | None = None,
) -> list[float]:
    """The distribution the simulator states, in label order, rounded as it will be printed."""
    logits = settings.t0 * np.log(true_distribution(text, labels))
    if temperature > 0 and settings.noise > 0:
        rng = np.random.default_rng(_text_hash("noise", text, seed) if seed is not None else None)
        logits = logits + rng.normal(0.0, settings.noise * temperature, size=len(labels))
    stated = np.exp(logits - logits.max())
    stated = round_to_grid(stated / stated.sum(), settings.rounding)
    return to_decimals(stated, settings.decimals)


def to_decimals(probabilities: np.ndarray, decimals: int) -> list[float]:
    """Values with ``decimals`` decimals that sum to exactly 1 in those decimals.

    Largest-remainder rounding: each value is floored to the last decimal and the units left over
    go to the largest remainders, so the printed answer is a distribution, not one off by 1e-4.
    """
    units = 10**decimals
    scaled = probabilities / probabilities.sum() * units
    floored = np.floor(scaled).astype(np.int64)
    shortfall = units - int(floored.sum())
    if shortfall > 0:
        floored[np.argsort(-(scaled - floored), kind="stable")[:shortfall]] += 1
    return [int(unit) / units for unit in floored]


# ---------------------------------------------------------------- formatting the answer


def _style_for(text: str, style: AnswerStyle) -> str:
    if style != "mixed":
        return style
    return ANSWER_STYLES[_text_hash("style", text) % len(ANSWER_STYLES)]


def _percent(value: float, decimals: int) -> str:
    digits = max(decimals - 2, 0)
    return f"{value * 100:.{digits}f}".rstrip("0").rstrip(".") + "%"


def format_answer(labels: Sequence[str], values: Sequence[float], style: str, decimals: int) -> str:
    """The answer text for a stated distribution in one of ANSWER_STYLES."""
    if style == "percent":
        return json.dumps(
            {lab: _percent(v, decimals) for lab, v in zip(labels, values, strict=True)}
        )
    answer = json.dumps(dict(zip(labels, values, strict=True)))
    top = labels[int(np.argmax(values))]
    if style == "fenced":
        return f"```json\n{json.dumps(dict(zip(labels, values, strict=True)), indent=2)}\n```"
    if style == "prose":
        return (
            f"The most likely label is {top}; here is my confidence in each label:\n"
            f"{answer}\nI hope this helps."
        )
    return answer


def _faulty_answer(fault: str, labels: Sequence[str], values: Sequence[float]) -> str:
    if fault == "malformed":
        answer = json.dumps(dict(zip(labels, values, strict=True)))
        return answer[: max(len(answer) // 2, 2)]
    if fault == "missing_label":
        # Like a model that leaves out the label it finds least likely: the rest still sum to 1.
        dropped = int(np.argmin(values))
        kept = [i for i in range(len(labels)) if i != dropped]
        rest = to_decimals(np.array([values[i] for i in kept]) + 1e-12, 4)
        return json.dumps({labels[i]: value for i, value in zip(kept, rest, strict=True)})
    top = labels[int(np.argmax(values))]
    return f"I think this is probably about {top}, but I would rather not put numbers on it."


# ---------------------------------------------------------------- the HTTP app


class _SimulatorState:
    """Counters and the seeded fault draw; touched only from the server's event loop."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        self.fault_rng = random.Random(self.settings.fault_seed)
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.responses: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.recent_bodies: deque[Any] = deque(maxlen=_RECENT_REQUESTS)

    def draw_fault(self) -> str | None:
        draw = self.fault_rng.random()
        cumulative = 0.0
        for fault, rate in self.settings._rates().items():
            cumulative += rate
            if draw < cumulative:
                return fault
        return None

    def stats(self) -> dict[str, Any]:
        return {
            "simulated": True,
            "requests": self.requests,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "responses": dict(self.responses),
            "faults": dict(self.faults),
            "recent_requests": list(self.recent_bodies),
        }


def _error(status: int, message: str, param: str | None = None, **headers: str) -> JSONResponse:
    kind = {400: "invalid_request_error", 429: "rate_limit_error"}.get(status, "server_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers or None)


def _validate(body: Any, settings: SimulatorSettings) -> JSONResponse | None:
    """A 400 answer for requests a real server would refuse, else None."""
    if not isinstance(body, dict):
        return _error(400, "The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return _error(400, "you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _error(400, "'messages' must be a non-empty array", "messages")
    for message in messages:
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            return _error(400, "each message needs a role and content", "messages")
    n = body.get("n", 1)
    if n is not None and (not isinstance(n, int) or n < 1):
        return _error(400, "n must be a positive integer", "n")
    if settings.reject_n and n is not None and n > 1:
        return _error(400, "n > 1 is not supported by this server", "n")
    temperature = body.get("temperature", 1.0)
    if temperature is not None and not (
        isinstance(temperature, int | float) and 0 <= temperature <= 2
    ):
        return _error(400, "temperature must be between 0 and 2", "temperature")
    for field in ("max_tokens", "max_completion_tokens"):
        value = body.get(field)
        if value is not None and (not isinstance(value, int) or value < 1):
            return _error(400, f"{field} must be a positive integer", field)
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        return _error(400, "seed must be an integer", "seed")
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            return _error(400, "response_format.type must be text, json_object or json_schema")
        schema = response_format.get("json_schema")
        if kind == "json_schema" and not (
            isinstance(schema, dict)
            and schema.get("name")
            and isinstance(schema.get("schema"), dict)
        ):
            return _error(400, "json_schema needs a name and a schema", "response_format")
    return None


def _message_text(messages: list[dict[str, Any]]) -> str:
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "\n".join(parts)


def _chosen_fault(request: Request, body: dict[str, Any], prompt: str, state: _SimulatorState):
    explicit = request.headers.get("x-sim-fault") or body.get("sim_fault")
    if explicit is None:
        marker = _FAULT_MARKER.search(prompt)
        explicit = marker.group(1) if marker else None
    if explicit is not None:
        return explicit if explicit in FAULT_KINDS else None
    return state.draw_fault()


def _delay(request: Request, body: dict[str, Any], fault: str | None, settings) -> float:
    if fault == "slow":
        return settings.slow_s
    if fault == "timeout":
        return settings.hang_s
    explicit = request.headers.get("x-sim-delay", body.get("sim_delay"))
    try:
        return max(float(explicit), 0.0) if explicit is not None else settings.delay_s
    except ValueError:
        return settings.delay_s


def _answer_text(body: dict[str, Any], prompt: str, fault: str | None, settings) -> str:
    fields = recover_prompt_fields(body["messages"])
    if fields is None:
        return NOT_UNDERSTOOD_ANSWER
    text, labels = fields
    labels = list(labels)
    temperature = body.get("temperature")
    values = stated_distribution(
        text,
        labels,
        settings,
        temperature=1.0 if temperature is None else float(temperature),
        seed=body.get("seed"),
    )
    if fault in ("malformed", "missing_label", "prose"):
        return _faulty_answer(fault, labels, values)
    format_type = (body.get("response_format") or {}).get("type")
    style = (
        "json"
        if format_type in ("json_object", "json_schema")
        else _style_for(text, settings.style)
    )
    return format_answer(labels, values, style, settings.decimals)


def _completion(
    body: dict[str, Any], prompt: str, content: str | None, settings: SimulatorSettings
) -> dict[str, Any]:
    """The chat.completion JSON; ``content=None`` is a refusal."""
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    message = {"role": "assistant", "content": content}
    if content is None:
        message["refusal"] = REFUSAL
    completion_tokens = math.ceil(len(content or REFUSAL) / _CHARS_PER_TOKEN)
    finish_reason = "stop"
    if content is not None and limit is not None and completion_tokens > limit:
        message["content"] = content[: limit * _CHARS_PER_TOKEN]
        completion_tokens, finish_reason = limit, "length"
    requested = body["model"]
    prompt_tokens = math.ceil(len(prompt) / _CHARS_PER_TOKEN)
    return {
        "id": f"chatcmpl-sim-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": requested if "simulated" in requested else settings.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def create_simulator_app(settings: SimulatorSettings | None = None) -> FastAPI:
    """The simulated LLM as an ASGI app (see the module docstring for its behaviour)."""
    settings = settings or SimulatorSettings()
    state = _SimulatorState(settings)
    app = FastAPI(title="verbcal simulated LLM", description=__doc__, docs_url=None, redoc_url=None)
    app.state.simulator = state

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        model = {"id": settings.model, "object": "model", "created": 0, "owned_by": "verbcal"}
        return {"object": "list", "data": [model]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> JSONResponse:
        state.requests += 1
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            response = await _handle_completion(request, state)
        finally:
            state.in_flight -= 1
        state.responses[str(response.status_code)] += 1
        return response

    @app.get("/_sim/stats")
    async def stats() -> dict[str, Any]:
        return state.stats()

    @app.post("/_sim/reset")
    async def reset() -> dict[str, Any]:
        state.reset()
        return state.stats()

    return app


async def _handle_completion(request: Request, state: _SimulatorState) -> JSONResponse:
    settings = state.settings
    try:
        body = json.loads(await request.body())
    except ValueError:
        return _error(400, "The request body is not valid JSON.")
    state.recent_bodies.append(body)
    invalid = _validate(body, settings)
    if invalid is not None:
        return invalid
    prompt = _message_text(body["messages"])
    fault = _chosen_fault(request, body, prompt, state)
    if fault is not None:
        state.faults[fault] += 1
    delay = _delay(request, body, fault, settings)
    if delay > 0:
        await asyncio.sleep(delay)
    if fault == "429":
        retry_after = f"{settings.retry_after_s:g}"
        return _error(429, "Rate limit reached (simulated).", **{"Retry-After": retry_after})
    if fault == "500":
        return _error(500, "The server had an error while processing your request (simulated).")
    if fault == "refuse":
        return JSONResponse(_completion(body, prompt, None, settings))
    content = _answer_text(body, prompt, fault, settings)
    return JSONResponse(_completion(body, prompt, content, settings))


# ---------------------------------------------------------------- running it


def serve(host: str = "127.0.0.1", port: int = 8010, settings: SimulatorSettings | None = None):
    """Run the simulator in the foreground until interrupted (``verbcal simulate-llm``)."""
    app = create_simulator_app(settings)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


@contextlib.contextmanager
def running_simulator(
    settings: SimulatorSettings | None = None, host: str = "127.0.0.1"
) -> Iterator[str]:
    """Run the simulator as a real HTTP server in a background thread, on a free port.

    Yields its base URL (``http://127.0.0.1:PORT/v1``) and stops the server on exit.
    """
    app = create_simulator_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"llm-simulator-{port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the LLM simulator did not start")
            time.sleep(0.01)
        yield f"http://{host}:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m app.llm.simulator --port 8010 [--t0 2 --delay 0.1 ...]``."""
    parser = argparse.ArgumentParser(description="verbcal's simulated OpenAI-compatible LLM")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--t0", type=float, default=2.0)
    parser.add_argument("--rounding", type=float, default=0.05)
    parser.add_argument("--style", default="json", choices=[*ANSWER_STYLES, "mixed"])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--rate-429", type=float, default=0.0)
    parser.add_argument("--rate-500", type=float, default=0.0)
    args = parser.parse_args(argv)
    settings = SimulatorSettings(
        t0=args.t0,
        rounding=args.rounding,
        style=args.style,
        delay_s=args.delay,
        rate_429=args.rate_429,
        rate_500=args.rate_500,
    )
    serve(args.host, args.port, settings)


if __name__ == "__main__":
    main()
