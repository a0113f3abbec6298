"""payoff rewards as verifiers 0.4.0 rewards, through verifiers' own scoring code (`Task.score`,
its plugged-function loader and `invoke`) in a cached virtualenv with the real verifiers from
PyPI: async, one trace at a time, all traces of a batch at once on one event loop, the engine
shared; outcomes compared exactly with `payoff.score` on the same samples; abstain mapped by the
stated policy (0.0 and a status metric), errors and timeouts raised so that verifiers records
them on the trace, never a 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from payoff.core import Sample
from payoff.engine import score
from payoff.registry import get_reward
from tests.venvs import venv_python

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEMO = f"{ROOT / 'tests' / 'serve' / 'nemo' / 'rewards.py'}:nemo_demo"
# verifiers 0.4.0 and what `import verifiers.v1` needs beyond the test environment (measured: each
# pinned where verifiers' own pins or its dependencies' pins require it), installed --no-deps.
PACKAGES = [
    "verifiers==0.4.0", "prime-pydantic-config==0.4.3", "renderers==0.1.12", "openai==2.54.0", "sniffio==1.3.1", "anthropic==2.16.0",
    "jiter==0.19.0", "docstring-parser==0.18.0", "prime-sandboxes==0.5.1", "tenacity==9.2.1", "connectrpc==0.11.1", "pyqwest==0.12.0",
    "protobuf-py==0.1.1", "distro==1.9.0", "aiofiles==25.1.0", "aiohttp==3.14.5", "multidict==7.2.1", "yarl==1.25.1", "propcache==0.5.4",
    "aiohappyeyeballs==2.7.1", "aiosignal==1.4.0", "frozenlist==1.8.0", "tomli-w==1.2.0",
    # verifiers' toolsets are MCP servers (tests/integrations/test_verifiers_env.py)
    "mcp==2.0.0", "mcp-types==2.3.0", "cryptography==50.0.2", "cffi==2.1.1", "pycparser==3.12",
]
SYSTEM = "Answer with the number only."
CALL = {"id": "c1", "name": "calc", "arguments": "{\"expression\": \"2+2\"}"}
CASES = [  # name, turns, answer: the reward sees only the final assistant text
    ("right", [{"role": "assistant", "content": "4"}], "4"),
    ("wrong", [{"role": "assistant", "content": "5"}], "4"),
    ("tool output is not the answer", [{"role": "assistant", "content": None, "tool_calls": [CALL]},
                                       {"role": "tool", "tool_call_id": "c1", "content": "4"},
                                       {"role": "assistant", "content": "I do not know."}], "4"),
    ("abstain", [{"role": "assistant", "content": "4"}], None),
    ("error", [{"role": "assistant", "content": "RAISE"}], "4"),
    ("timeout", [{"role": "assistant", "content": "SLEEP"}], "4"),
]
REWARDS_FILE = f'''\
from payoff.integrations.verifiers import verifiers_reward

demo = verifiers_reward({DEMO!r}, name="demo", timeout_s=2, workers=1)
math = verifiers_reward("math")
'''


def samples() -> list[Sample]:
    """The same rollouts as payoff Samples, written out by hand: the final assistant text only."""
    out = []
    for _, turns, answer in CASES:
        final = next(t["content"] for t in reversed(turns) if t["role"] == "assistant" and t.get("content"))
        meta = {"source": "grade school"}
        if len([t for t in turns if t["role"] == "assistant"]) > 1:
            meta["output_tools"] = [{"id": "c1", "type": "function", "function": {"name": "calc", "arguments": CALL["arguments"]}}]
        out.append(Sample(completion=final, prompt=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 2 + 2?"}],
                          reference=answer, meta=meta))
    return out


def test_payoff_rewards_through_verifiers_own_scoring(tmp_path) -> None:
    python = venv_python("verifiers-0.4.0", PACKAGES, overlay=True)
    rewards = tmp_path / "payoff_rewards.py"
    rewards.write_text(REWARDS_FILE)
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps([{"system": SYSTEM, "prompt": "What is 2 + 2?", "turns": turns, "answer": answer, "source": "grade school"}
                                 for _, turns, answer in CASES]))
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "PYTHONNOUSERSITE": "1"}
    done = subprocess.run([str(python), str(HERE / "verifiers_side" / "score_traces.py"), str(rewards), str(cases)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    traces = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(traces) == len(CASES)

    demo = score(samples(), get_reward(DEMO), workers=1, timeout_s=2)
    math = score(samples(), "math", workers=1)
    for (name, *_), trace, mine, theirs in zip(CASES, traces, demo, math):
        assert trace["last_reply"] == samples()[CASES.index(next(c for c in CASES if c[0] == name))].completion, name
        if mine.status in ("error", "timeout"):  # raised: verifiers records a task scoring error, no reward
            assert not trace["ok"] and trace["rewards"]["demo"] is None, name
            assert f"payoff reward gave {mine.status}" in trace["errors"][0], name
            continue
        expected_demo = mine.score if mine.is_ok else 0.0  # the stated policy: abstain -> 0.0 (and a status metric)
        expected_math = theirs.score if theirs.is_ok else 0.0
        assert trace["ok"] and trace["rewards"] == {"demo": expected_demo, "math": expected_math}, name
        assert trace["reward"] == pytest.approx(expected_demo + expected_math), name
        assert trace["metrics"][f"demo/status/{mine.status}"] == 1.0 and trace["metrics"][f"math/status/{theirs.status}"] == 1.0, name
        for component, value in mine.components.items():
            assert trace["metrics"][f"demo/{component}"] == value, name  # logged, never summed
    assert [o.status for o in demo] == ["ok", "ok", "ok", "abstain", "error", "timeout"]
    assert demo[2].score == 0.5  # the tool's "4" earned nothing; the call itself is a component
