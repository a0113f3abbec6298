"""payoff environments' tools as verl 0.9.1 agent-loop tools, in verl's venv (tests/venvs.py):
loaded by verl's own `initialize_tools_from_config` from the YAML of docs/integrations.md (the
recipe ``verl-tools``) and called by verl's own `ToolAgentLoop._call_tool`, which creates and
releases a tool instance around every call. What verl hands the model is compared exactly with
the tool messages of payoff's own `run_episode` for the same calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from payoff.envs import get_env, run_episode
from tests.integrations.conformance import ROOT, TABLE
from tests.integrations.test_recipes import recipe
from tests.venvs import client_python, run_in

pytestmark = pytest.mark.slow
# (trajectory, tool, arguments): two trajectories interleave; a bad call; a call past the truncation.
CALLS = [
    ("a", "python", {"code": "x = 21"}),
    ("b", "python", {"code": "x = 5"}),
    ("a", "python", {"code": "print(x * 2)"}),
    ("b", "python", {"code": "print(x * 2)"}),
    ("a", "calculator", {"expression": "6*7"}),
    ("b", "calculator", {"expr": "6*7"}),
    ("a", "python", {"code": "print('y' * 300)"}),
]


def _payoff_messages(trajectory: str) -> list[str]:
    """The same trajectory's calls through payoff's own runner, one environment per tool kind."""
    texts = []
    for name in ("python", "calculator"):
        calls = [(tool, args) for t, tool, args in CALLS if t == trajectory and tool == name]
        script = [{"role": "assistant", "content": "", "tool_calls": [{"id": f"c{i}", "type": "function",
                   "function": {"name": tool, "arguments": json.dumps(args)}}]} for i, (tool, args) in enumerate(calls)]
        script.append({"role": "assistant", "content": "done"})
        turns = iter(script)
        params = {"call_timeout_s": 10} if name == "python" else {}
        sample, _ = run_episode(get_env(name, **params), lambda messages, tools, turns=turns: next(turns), {"prompt": "go"})
        texts += [(name, m["content"]) for m in sample.messages if m["role"] == "tool"]
    return texts


def test_environment_tools_through_verls_tool_agent_loop(tmp_path: Path) -> None:
    python = client_python("verl-0.9.1")
    config = tmp_path / "payoff_tools.yaml"
    config.write_text(recipe("verl-tools"))
    spec = {"tool_config": str(config), "tools_kwargs": {},
            "calls": [[t, tool, json.dumps(args)] for t, tool, args in CALLS]}
    result = run_in(python, (ROOT / "tests/integrations/clients/verl_tools.py").read_text(), json.dumps(spec))
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for name in ("python", "calculator"):
        schema = get_env(name).reset({})[1][0]
        # verl's OpenAIFunctionToolSchema has no additionalProperties: the environment still refuses unknown arguments.
        assert schema["function"]["parameters"].pop("additionalProperties") is False
        assert report["schemas"][name] == schema
    limit = report["max_tool_response_length"]

    def truncated(text: str) -> str:  # verl's own rule, 'middle' side (its default)
        return text if len(text) <= limit else text[:limit // 2] + "...(truncated)..." + text[-(limit // 2):]

    for trajectory in ("a", "b"):
        got = [(r["tool"], r["text"]) for r in report["results"] if r["trajectory"] == trajectory]
        want = [(tool, truncated(text)) for tool, text in _payoff_messages(trajectory)]
        got.sort(key=lambda item: item[0] != "python")  # payoff's runs went python first, then calculator
        TABLE.record("verl 0.9.1", "python + calculator env tools", f"ToolAgentLoop._call_tool, trajectory {trajectory}: tool messages",
                     got, want, note="interleaved with the other trajectory")
    results = {(r["trajectory"], r["tool"], i): r["text"] for i, r in enumerate(report["results"])}
    assert results[("a", "python", 2)] == "42\n" and results[("b", "python", 3)] == "10\n"  # one session per trajectory
    assert "missing required argument 'expression'" in results[("b", "calculator", 5)]
    assert all(r["reward"] == 0.0 for r in report["results"])
    assert report["open_before"] == 4 and report["open_after"] == 0  # an episode per trajectory and environment, closed with it


