"""The verifiers, NeMo-Gym and OpenAI-grader recipes in docs/integrations.md, run as written (a
free port for 8000; the verifiers recipe with a rollout scored by verifiers' own `Task.score`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integrations.test_recipes import recipe, substitute
from tests.integrations.test_verifiers import PACKAGES
from tests.serve.helpers import free_port
from tests.venvs import venv_python

ROOT = Path(__file__).resolve().parents[2]


def bash(script: str, folder: Path) -> str:
    """Run `script` in `folder` with this checkout's payoff; its stdout."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    guarded = "set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script
    done = subprocess.run(["bash", "-c", guarded], cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def test_graders_recipe(tmp_path: Path) -> None:
    pytest.importorskip("rapidfuzz", reason="fuzzy_match needs rapidfuzz (payoff[text])")
    port = str(free_port())
    script = substitute(recipe("graders"), {"--port 8000": f"--port {port}"})
    script += (f"until curl -sf http://127.0.0.1:{port}/healthz > /dev/null; do sleep 0.2; done\n"
               f"curl -s http://127.0.0.1:{port}/v1/score -H 'content-type: application/json' --data @- <<'JSON'\n"
               '{"samples": [{"completion": "{\\"name\\": \\"Jon Doe\\", \\"email\\": \\"JON@example.com\\"}", '
               '"meta": {"name": "Jon Doe", "email": "jon@example.com"}}]}\nJSON\n')
    served = json.loads(bash(script, tmp_path).strip().splitlines()[-1])
    scored = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert scored[0]["status"] == "ok" and scored[0]["reward"] == pytest.approx((14 / 15 + 1) / 2)  # "John Doe" vs "Jon Doe": 14/15
    assert scored[1]["status"] == "error" and "not a JSON object" in json.dumps(scored[1]["info"])
    assert served["outcomes"][0]["reward"] == 0.5  # served the same: the name matches, the email's case does not


def test_nemo_gym_recipe(tmp_path: Path) -> None:
    port = str(free_port())
    script = substitute(recipe("nemo-gym"), {"--port 8000": f"--port {port}"}).replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    answer = json.loads(bash(script, tmp_path).strip().splitlines()[-1])
    assert (answer["reward"], answer["mask_sample"], answer["failure_kind"], answer["payoff_status"]) == (1.0, False, None, "ok")
    assert answer["expected_answer"] == "4"  # the request is echoed, as NeMo-Gym's BaseVerifyResponse does


SCORE = """
import asyncio, sys
sys.path.insert(0, ".")
import verifiers.v1 as vf
from verifiers.v1.graph import MessageNode
from verifiers.v1.trace import AgentInfo, Trace, TraceTask
from verifiers.v1.types import AssistantMessage, UserMessage
import my_rewards

async def main():
    for reply in ("The answer is \\\\boxed{4}.", "It is 5."):
        data = my_rewards.MathData(prompt="What is 2 + 2?", answer="4")
        for task in (my_rewards.MathTask(data), my_rewards.MathTask(data, my_rewards.config)):
            trace = Trace(task=TraceTask(type="math", data=data), agent=AgentInfo(config=vf.AgentConfig()), nodes=[
                MessageNode(message=UserMessage(content="What is 2 + 2?")),
                MessageNode(message=AssistantMessage(content=reply), parent=0, sampled=True)])
            await task.score(trace)
            print(trace.reward, trace.rewards["correct"].score, trace.metrics["math/status/ok"])

asyncio.run(main())
"""


def test_verifiers_recipe(tmp_path: Path) -> None:
    python = venv_python("verifiers-0.4.0", PACKAGES, overlay=True)
    (tmp_path / "my_rewards.py").write_text(recipe("verifiers"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "PYTHONNOUSERSITE": "1"}
    done = subprocess.run([str(python), "-c", SCORE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # the method and the plugged function: 1 for the right answer, 0 for the wrong one
    assert done.stdout.split() == ["1.0", "1.0", "1.0"] * 2 + ["0.0", "0.0", "1.0"] * 2


SCORE_ENV = """
import asyncio, json, sys
sys.path.insert(0, ".")
import verifiers.v1 as vf
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from verifiers.v1.graph import MessageNode
from verifiers.v1.mcp.launch import serve
from verifiers.v1.trace import AgentInfo, Trace, TraceTask
from verifiers.v1.types import AssistantMessage, ToolCall, ToolMessage, UserMessage
import my_calculator

async def main():
    data = my_calculator.MathData(prompt="What is 6 * 7?", answer="42")
    task = my_calculator.CalculatorTask(data)
    (toolset,) = my_calculator.CalculatorTask.toolsets(task.config)
    async with serve(toolset) as url:
        async with streamable_http_client(url) as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            result = await session.call_tool("calculator", {"expression": "6 * 7"})
    output = result.content[0].text
    for reply in ("The answer is \\\\boxed{42}.", "I do not know."):
        trace = Trace(task=TraceTask(type="calc", data=data), agent=AgentInfo(config=vf.AgentConfig()), nodes=[
            MessageNode(message=UserMessage(content="What is 6 * 7?")),
            MessageNode(message=AssistantMessage(content=None, tool_calls=[ToolCall(id="c1", name="calculator",
                        arguments=json.dumps({"expression": "6 * 7"}))]), parent=0, sampled=True),
            MessageNode(message=ToolMessage(tool_call_id="c1", content=output), parent=1),
            MessageNode(message=AssistantMessage(content=reply), parent=2, sampled=True)])
        await task.score(trace)
        print(output, trace.reward)

asyncio.run(main())
"""


def test_verifiers_environment_recipe(tmp_path: Path) -> None:
    python = venv_python("verifiers-0.4.0", PACKAGES, overlay=True)
    (tmp_path / "my_calculator.py").write_text(recipe("verifiers-env"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "PYTHONNOUSERSITE": "1"}
    done = subprocess.run([str(python), "-c", SCORE_ENV], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # The served calculator answered 42; the reward pays the final reply, not the tool's output.
    assert done.stdout.split() == ["42", "1.0", "42", "0.0"]
