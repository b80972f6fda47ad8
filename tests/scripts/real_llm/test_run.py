"""The runner's options and the task it creates."""

import httpx
import pytest

from app.llm.config import LLMConfig
from scripts.real_llm.run import Api, StageFailed, llm_config, parse_args, unparseable_answer


def test_the_task_llm_config_is_valid_and_sets_only_what_llama_server_needs():
    config = llm_config("http://127.0.0.1:8080/v1", "m", None, 180.0)
    assert "reasoning" not in config  # the product's default decides
    parsed = LLMConfig.model_validate(config)
    assert parsed.structured_output == "json_schema"
    assert parsed.extra_body == {"cache_prompt": False}
    assert (parsed.concurrency, parsed.timeout_s) == (1, 180.0)
    assert llm_config("http://127.0.0.1:8080/v1", "m", True, 60.0)["reasoning"] is True


def test_options(tmp_path):
    args = parse_args(["--n", "60", "--reasoning", "both", "--cache-dir", str(tmp_path)])
    assert (args.n, args.reasoning, args.cache_dir, args.max_chars) == (60, "both", tmp_path, 600)
    with pytest.raises(SystemExit) as exc:
        parse_args(["--n", "10"])
    assert exc.value.code == 2


def _calibrate_answer(status: int, body: dict) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request("POST", "http://x/calibrate"))


def test_an_unparseable_model_answer_is_counted_not_a_failed_stage():
    reason = "probabilities sum to 0.8, outside the tolerance [0.95, 1.05]"
    unparsed = {
        "error": {"code": "llm_error", "details": {"kind": "unparseable", "message": reason}}
    }
    assert unparseable_answer(_calibrate_answer(502, unparsed)) == reason
    timeout = {"error": {"code": "llm_error", "details": {"kind": "timeout", "message": "slow"}}}
    assert unparseable_answer(_calibrate_answer(502, timeout)) is None
    assert unparseable_answer(_calibrate_answer(200, {"label": "tech"})) is None
    with pytest.raises(StageFailed, match="POST /calibrate answered 502"):
        Api.checked(_calibrate_answer(502, timeout))
