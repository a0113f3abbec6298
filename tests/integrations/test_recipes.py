"""Every recipe in docs/integrations.md, run as written against the pinned client library.

TRL's recipe is Python and runs here with a tiny local model and one step in place of the hub
model and 200 steps. The verl and OpenRLHF recipes are shell: bash runs them as written (their
``$(python -c ...)``, exports, and ``payoff serve ... &``), with the client's venv first on PATH,
a free port for 8000, and the trainer's entry module swapped for a probe that parses the same
arguments with the trainer's own config code (verl's Hydra config, OpenRLHF's argparse block) and
scores the conformance samples through the reward hook the trainer builds from them."""

from __future__ import annotations

import copy
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integrations.conformance import ROOT, SAMPLES, expected
from tests.serve.helpers import free_port
from tests.venvs import client_python

pytestmark = pytest.mark.slow
PAGE = ROOT / "docs" / "integrations.md"
CLIENTS = ROOT / "tests" / "integrations" / "clients"


def recipe(name: str) -> str:
    match = re.search(rf"<!-- recipe: {re.escape(name)} -->\n```\w+\n(.*?)```", PAGE.read_text(), re.DOTALL)
    assert match, f"no recipe {name!r} in {PAGE}"
    return match.group(1)


def substitute(text: str, swaps: dict[str, str]) -> str:
    for old, new in swaps.items():
        assert text.count(old) == 1, f"{old!r} should occur once in the recipe"
        text = text.replace(old, new)
    return text


def run_bash(script: str, python: Path) -> dict:
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "PYTHONNOUSERSITE": "1"}
    # Whatever the recipe started in the background (the server) goes when the script ends.
    guarded = "set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script
    result = subprocess.run(["bash", "-c", guarded], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_trl_recipe(tmp_path: Path) -> None:
    from tests.rl.toy import save_tiny

    model = save_tiny(tmp_path / "tiny")
    code = substitute(recipe("trl"), {
        '"Qwen/Qwen2.5-0.5B-Instruct"': repr(str(model)), "max_steps=200": "max_steps=1",
        "max_completion_length=256": "max_completion_length=8", '"grpo-math"': repr(str(tmp_path / "out")),
        'report_to="none"': 'report_to="none", use_cpu=True, bf16=False, disable_tqdm=True',
    })
    namespace: dict = {"__name__": "__recipe__"}
    exec(compile(code, "docs/integrations.md#trl", "exec"), namespace)
    assert namespace["trainer"].state.global_step == 1
    outcomes = namespace["math"].last_outcomes
    assert len(outcomes) == 4 and {o.status for o in outcomes} <= {"ok", "abstain"}


def test_trl_environment_recipe(tmp_path: Path) -> None:
    import trl

    from tests.rl.toy import save_tiny, tokenizer

    model = save_tiny(tmp_path / "tiny")
    # A chat template that renders tools (TRL's shipped Qwen2.5 one; the tiny model's tokenizer has ChatML tokens).
    tok = copy.deepcopy(tokenizer())  # the cached one is shared: other tests need its own template
    tok.chat_template = (Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text()
    tok.save_pretrained(model)
    code = substitute(recipe("trl-env"), {
        '"Qwen/Qwen2.5-0.5B-Instruct"': repr(str(model)), "max_steps=200": "max_steps=1",
        "max_completion_length=512": "max_completion_length=16", '"grpo-calculator"': repr(str(tmp_path / "out")),
        'report_to="none"': 'report_to="none", use_cpu=True, bf16=False, disable_tqdm=True',
    })
    namespace: dict = {"__name__": "__recipe__"}
    exec(compile(code, "docs/integrations.md#trl-env", "exec"), namespace)
    assert namespace["trainer"].state.global_step == 1
    assert namespace["trainer"].tools[0].__name__ == "calculator"
    outcomes = namespace["calculator"].reward_func.last_outcomes
    # A random model writes no valid answer: math abstains or scores 0 (never an error).
    assert len(outcomes) == 4 and {o.status for o in outcomes} <= {"ok", "abstain"}


def test_verl_recipe() -> None:
    python = client_python("verl-0.9.1")
    script = substitute(recipe("verl"), {"-m verl.trainer.main_ppo": str(CLIENTS / "verl_recipe.py")})
    report = run_bash(script, python)
    assert report["path"] == str(ROOT / "src" / "payoff" / "integrations" / "verl.py")  # this checkout's adapter
    assert report["function"] == "compute_score_async"
    want = expected("math")
    assert [out["score"] for out in report["outputs"]] == [o["score"] if o["status"] == "ok" else 0.0 for o in want]
    assert [out["extra"]["payoff/status"] for out in report["outputs"]] == [o["status"] for o in want]


def test_verl_tools_recipe(tmp_path: Path) -> None:
    python = client_python("verl-0.9.1")
    (tmp_path / "payoff_tools.yaml").write_text(recipe("verl-tools"))
    script = f"cd {tmp_path}\n" + substitute(recipe("verl-tools-run"), {"-m verl.trainer.main_ppo": str(CLIENTS / "verl_tools_recipe.py")})
    report = run_bash(script, python)
    assert report["enable"] is True and report["agent_loop"] == "tool_agent"
    assert report["agent_loop_class"].endswith("tool_agent_loop.ToolAgentLoop")
    assert report["tools"] == ["calculator", "python"] and report["python"] == "42\n"
    assert report["reward"] == [str(ROOT / "src" / "payoff" / "integrations" / "verl.py"), "compute_score_async", "math"]


@pytest.mark.parametrize("name", ["openrlhf", "openrlhf-file"])
def test_openrlhf_recipes(name: str) -> None:
    python = client_python("openrlhf-0.11.2")
    swaps = {"-m openrlhf.cli.train_ppo_ray": str(CLIENTS / "openrlhf_recipe.py")}
    if name == "openrlhf":
        port = str(free_port())
        swaps.update({"--port 8000": f"--port {port}", "127.0.0.1:8000": f"127.0.0.1:{port}"})
    report = run_bash(substitute(recipe(name), swaps), python)
    (url,) = report["remote_url"]
    if name == "openrlhf":
        assert re.fullmatch(r"http://payoff:[\w-]{20,}@127\.0\.0\.1:\d+/get_reward", url)  # the token made it into the URL
    else:
        assert url == str(ROOT / "src" / "payoff" / "integrations" / "openrlhf.py")
    want = expected("math")
    rewards = [out["reward"] for out in report["outputs"]]
    assert all(r is not None and not math.isnan(r) for r in rewards), report  # None: the server refused (no token)
    assert rewards == pytest.approx([o["score"] if o["status"] == "ok" else 0.0 for o in want], abs=1e-7)
    assert [out["extra_logs"]["payoff_abstain"] for out in report["outputs"]] == [float(o["status"] == "abstain") for o in want]
    assert len(SAMPLES) == len(rewards)
