"""A payoff environment as a verifiers 0.4.0 toolset, in verifiers' venv: started the way
verifiers starts a rollout's toolset (``verifiers.v1.mcp.launch.serve``: a ``python -m``
subprocess, its port read back and probed) and called over MCP's own streamable-HTTP client.
What the model would read is compared exactly with the tool messages of payoff's `run_episode`
for the same calls; the episode's processes are gone once verifiers stops the server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from payoff.envs import get_env, run_episode
from tests.integrations.conformance import ROOT, TABLE
from tests.integrations.test_verifiers import PACKAGES
from tests.venvs import run_in, venv_python

pytestmark = pytest.mark.slow
CALLS = {
    "python": [("python", {"code": "x = 21"}), ("python", {"code": "print(x * 2)"}), ("python", {"code": "raise ValueError('no')"}),
               ("python", {"code": "print('y' * 5000)"})],
    "calculator": [("calculator", {"expression": "6*7"}), ("calculator", {"expression": "1/0"}), ("calculator", {"expression": "2**(3"})],
}


def _payoff_messages(name: str) -> list[str]:
    turns = iter([*({"role": "assistant", "content": "", "tool_calls": [{"id": f"c{i}", "type": "function", "function": {
        "name": tool, "arguments": json.dumps(args)}}]} for i, (tool, args) in enumerate(CALLS[name])),
        {"role": "assistant", "content": "done"}])
    sample, _ = run_episode(get_env(name), lambda messages, tools: next(turns), {"prompt": "go"})
    return [m["content"] for m in sample.messages if m["role"] == "tool"]


def _serve(name: str, calls: list[Any]) -> dict:
    python = venv_python("verifiers-0.4.0", PACKAGES, overlay=True)
    result = run_in(python, (ROOT / "tests/integrations/verifiers_side/toolset.py").read_text(),
                    json.dumps({"env": name, "calls": calls}))
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(CALLS))
def test_payoff_environment_as_a_verifiers_toolset(name: str) -> None:
    report = _serve(name, CALLS[name])
    (schema,) = get_env(name).reset({})[1]
    (tool,) = report["tools"]
    parameters = schema["function"]["parameters"]
    assert tool["name"] == schema["function"]["name"] and tool["description"] == schema["function"]["description"]
    assert tool["input_schema"]["required"] == parameters["required"]
    assert {k: v["type"] for k, v in tool["input_schema"]["properties"].items()} == {k: v["type"] for k, v in parameters["properties"].items()}
    got = [r["text"] for r in report["results"]]
    TABLE.record("verifiers 0.4.0", f"{name} env tools", "Toolset served by verifiers' launcher, called over MCP: tool messages", got,
                 _payoff_messages(name), note="failures are the tool's message, as in run_episode")
    assert not any(r["is_error"] for r in report["results"])
    assert report["session_gone"]  # verifiers stopped the server: the episode's Python session went with it


def test_arguments_that_do_not_match_the_schema_are_refused_by_mcp_before_the_environment() -> None:
    report = _serve("calculator", [("calculator", {"expr": "6*7"})])
    (result,) = report["results"]
    assert result["is_error"] and "expression" in result["text"] and "Field required" in result["text"]
