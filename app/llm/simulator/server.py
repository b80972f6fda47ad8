"""The simulated LLM's HTTP app: an OpenAI-compatible ``POST /v1/chat/completions``.

How it answers:

1. It recognises the default prompts (plain and reasoning) with ``prompts.recover_prompt_fields``
   and reads the text and labels from them. Any other prompt gets the prose answer
   ``NOT_UNDERSTOOD_ANSWER`` (no JSON), so callers see a failed parse instead of a made-up
   distribution.
2. The distribution and its formatting come from ``answers`` (see its docstring). The reasoning
   flavour is asked for by the default reasoning prompt or by a ``json_schema`` whose first
   property is ``reasoning``. When the request asks for JSON via ``response_format`` the answer is
   clean JSON whatever the style (exactly the schema's keys), as a server with structured output
   would give; the corpus styles only show without ``response_format``.

Faults, for tests and demos. Per request, the first of these that is set wins: the header
``X-Sim-Fault``, the body field ``sim_fault`` (send it with ``extra_body``), a marker
``[sim-fault:KIND]`` anywhere in the messages (lets one text among many fail), else a seeded
random draw with the ``rate_*`` settings (deterministic in request order). Kinds: ``429`` (with
``Retry-After: retry_after_s``), ``500``, ``malformed`` (cut-off JSON), ``missing_label`` (the
least likely label is left out, the others renormalized), ``prose`` (an opinion with no
numbers), ``refuse`` (the message carries a ``refusal`` and no content, as OpenAI's structured
outputs do), ``answer_disagrees`` (a corpus-style answer whose ``"Answer"`` names the runner-up
label, not the argmax), ``slow`` (waits ``slow_s``) and ``timeout`` (waits ``hang_s``).
``X-Sim-Delay`` / ``sim_delay`` override ``delay_s``. Requests with ``n > 1`` get a 400 like vLLM
or ollama when ``reject_n`` is set; with ``reject_json_schema`` a ``json_schema`` response format
gets llama-cpp-python's HTTP 500 (``JSON_SCHEMA_REJECTION``).

Simulator-only endpoints: ``GET /_sim/stats`` (request counts, current and maximum in-flight
requests, the last request bodies) and ``POST /_sim/reset``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.llm.simulator.answers import (
    NOT_UNDERSTOOD_ANSWER,
    distribution_object,
    faulty_answer,
    format_answer,
    runner_up,
    stated_distribution,
    style_for,
)
from app.llm.simulator.settings import SYSTEM_FINGERPRINT, SimulatorSettings
from prompts import REASONING_KEY, recover_prompt_fields

FAULT_KINDS = (
    "429", "500", "malformed", "missing_label", "prose", "refuse", "answer_disagrees", "slow",
    "timeout",
)  # fmt: skip
REFUSAL = "I'm sorry, but I can't help with classifying this text."
JSON_SCHEMA_REJECTION = (
    'response_format type must be one of "text" or "json_object", but got: json_schema'
)
_FAULT_MARKER = re.compile(r"\[sim-fault:([a-z_0-9]+)\]")
_CHARS_PER_TOKEN = 4
_RECENT_REQUESTS = 100


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
        for fault, rate in self.settings.fault_rates().items():
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


def _format_type(body: dict[str, Any]) -> str | None:
    return (body.get("response_format") or {}).get("type")


def _asks_reasoning(body: dict[str, Any]) -> bool:
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return isinstance(properties, dict) and next(iter(properties), None) == REASONING_KEY


def _answer_text(body: dict[str, Any], fault: str | None, settings: SimulatorSettings) -> str:
    prompt = recover_prompt_fields(body["messages"])
    if prompt is None:
        return NOT_UNDERSTOOD_ANSWER
    labels = list(prompt.labels)
    temperature = body.get("temperature")
    values = stated_distribution(
        prompt.text,
        labels,
        settings,
        temperature=1.0 if temperature is None else float(temperature),
        seed=body.get("seed"),
    )
    if fault in ("malformed", "missing_label", "prose"):
        return faulty_answer(fault, labels, values)
    if fault == "answer_disagrees":
        return format_answer(
            labels,
            values,
            "reasoning_answer",
            settings.decimals,
            stated_answer=runner_up(labels, values),
        )
    reasoning = prompt.reasoning or _asks_reasoning(body)
    if _format_type(body) in ("json_object", "json_schema"):
        return json.dumps(distribution_object(labels, values, reasoning=reasoning))
    style = style_for(prompt.text, settings.style)
    return format_answer(labels, values, style, settings.decimals, reasoning=reasoning)


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
    if settings.reject_json_schema and _format_type(body) == "json_schema":
        return _error(500, JSON_SCHEMA_REJECTION)
    content = _answer_text(body, fault, settings)
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
