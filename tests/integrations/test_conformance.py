"""Conformance against the real client libraries: the same rewards and samples through TRL 1.16
(this environment), verl 0.9.1 and OpenRLHF 0.11.2 (each in its cached venv, tests/venvs.py),
every client-visible result compared exactly with what `payoff.score` says of the same samples.
The table of client x reward x path is printed at the end of the run."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from payoff.core import STATUSES
from payoff.integrations.common import component_names, resolve_reward
from tests.integrations.conformance import REWARDS, ROOT, SAMPLES, TABLE, expected, float32
from tests.serve.helpers import running_server
from tests.venvs import client_python, run_in

pytestmark = pytest.mark.slow
ADAPTERS = ROOT / "src" / "payoff" / "integrations"


def _value(outcome: dict[str, Any], fail: float | None) -> float | None:
    """The number a trainer gets: the score, or `fail` (None for TRL, 0.0 where a number is required)."""
    return outcome["score"] if outcome["status"] == "ok" else fail


# -- TRL ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grpo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from payoff.integrations.trl import trl_reward
    from tests.rl.toy import tiny_model, tokenizer

    funcs = {name: trl_reward(resolve_reward(spec), workers=1) for name, spec in REWARDS.items()}
    config = GRPOConfig(output_dir=str(tmp_path_factory.mktemp("grpo")), use_cpu=True, bf16=False, max_steps=1,
                        per_device_train_batch_size=4, num_generations=4, max_completion_length=6, report_to="none",
                        save_strategy="no", disable_tqdm=True, seed=0)
    rows = [{"prompt": s["prompt"], "reference": s["reference"]} for s in SAMPLES]
    trainer = GRPOTrainer(model=tiny_model(), reward_funcs=list(funcs.values()), args=config, train_dataset=Dataset.from_list(rows),
                          processing_class=tokenizer())
    return trainer, funcs


def _with_tools(sample: dict[str, Any]) -> list[dict[str, Any]]:
    """A completion as TRL builds it in tool mode: the model's tool call, the tool's result (which
    holds the right answer: it must earn nothing), then the model's final turn."""
    call = {"type": "function", "function": {"name": "calculator", "arguments": {"expression": sample["prompt"]}}}
    return [{"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "name": "calculator", "content": f"The answer is {sample['reference']}."},
            {"role": "assistant", "content": sample["completion"]}]


@pytest.mark.parametrize("form", ["plain", "conversational with tools"])
def test_trl_reward_funcs_through_grpo_trainer(grpo: Any, form: str) -> None:
    trainer, funcs = grpo
    if form == "plain":
        prompts, completions = [s["prompt"] for s in SAMPLES], [s["completion"] for s in SAMPLES]
    else:
        prompts = [[{"role": "user", "content": s["prompt"]}] for s in SAMPLES]
        completions = [_with_tools(s) for s in SAMPLES]
    inputs = [{"prompt": p, "reference": s["reference"]} for p, s in zip(prompts, SAMPLES)]
    trainer._pending_metrics.clear()
    trainer._pending_extra_logs.clear()
    # TRL's own reward step: its keyword arguments (trainer_state, log_extra, log_metric), None -> NaN.
    rewards = trainer._calculate_rewards(inputs, prompts, completions, [[0]] * len(SAMPLES))
    for column, (name, func) in enumerate(funcs.items()):
        want = expected(name)
        got = [None if math.isnan(v) else v for v in rewards[:, column].tolist()]
        TABLE.record("TRL 1.16", name, f"reward_funcs, {form}", got, [float32(_value(o, None)) for o in want])
        TABLE.record("TRL 1.16", name, f"reward_funcs, {form}: full outcomes",
                     [{"score": o.score, "status": o.status, "components": o.components} for o in func.last_outcomes], want)
        assert trainer._pending_extra_logs[f"{func.__name__}/status"] == [o["status"] for o in want]
        assert trainer._pending_metrics[f"{func.__name__}/abstain"] == [sum(o["status"] == "abstain" for o in want) / len(want)]
        for term in component_names(func.engine.reward):
            values = [o["components"][term] for o in want if term in o["components"]]
            assert trainer._pending_metrics[f"{func.__name__}/{term}"] == [sum(values) / len(values)]


# -- verl ---------------------------------------------------------------------------------------
def _verl_view(outcome: dict[str, Any], terms: list[str]) -> dict[str, Any]:
    """What payoff's verl dict should carry for `outcome`."""
    flags = {f"payoff/{s}": float(outcome["status"] == s) for s in STATUSES}
    return {"score": _value(outcome, 0.0), "payoff/status": outcome["status"], **flags,
            **{f"payoff/{t}": outcome["components"].get(t) for t in terms}}


def test_verl_custom_reward_function_through_its_managers_and_reward_loop() -> None:
    python = client_python("verl-0.9.1")
    spec = {"samples": SAMPLES, "rewards": list(REWARDS.values()), "adapter": str(ADAPTERS / "verl.py")}
    result = run_in(python, (ROOT / "tests/integrations/clients/verl_paths.py").read_text(), json.dumps(spec))
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["verl"] == "0.9.1"
    # The top-level key payoff's docs used to name: verl 0.9.1's main_ppo never reads it.
    assert report["legacy_key_loaded"] is False
    for name, reward in REWARDS.items():
        want = expected(name)
        terms = component_names(resolve_reward(reward))
        for path, outputs in report["rewards"][reward].items():
            stored = [float32(_value(o, 0.0)) if path == "legacy manager" else _value(o, 0.0) for o in want]
            TABLE.record("verl 0.9.1", name, f"{path}: reward", [out["score"] for out in outputs], stored)
            TABLE.record("verl 0.9.1", name, f"{path}: logged status, components", [out["extra"] for out in outputs],
                         [_verl_view(o, terms) for o in want])


# -- OpenRLHF -----------------------------------------------------------------------------------
TRUNCATED = {"prompt": "The answer is 42. " + "Say it again and again. " * 60 + "What is the answer?", "completion": "I do not know.",
             "reference": "42"}


def _openrlhf_view(outcome: dict[str, Any], cast: Any = float) -> dict[str, Any]:
    logs = {f"payoff_{s}": float(outcome["status"] == s) for s in ("abstain", "error", "timeout")}
    return {"reward": cast(_value(outcome, 0.0)), "scores": cast(_value(outcome, 0.0)), "extra_logs": logs}


@pytest.mark.parametrize("name", list(REWARDS))
def test_openrlhf_remote_rm_client_and_reward_function_file(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    python = client_python("openrlhf-0.11.2")
    reward = REWARDS[name]
    token = "conformance-token"
    args = ["--config", reward] if reward.endswith(".toml") else ["--reward", reward]
    with running_server(*args, "--workers", "1", "--token", token) as (url, _):
        address = url.replace("http://", f"http://payoff:{token}@")
        spec = {"samples": [*SAMPLES, TRUNCATED], "max_length": 128, "paths": {
            "remote RM client": f"{address}/get_reward",
            "remote RM client, wrong token": url.replace("http://", "http://payoff:wrong@") + "/get_reward",
            "reward function file": str(ADAPTERS / "openrlhf.py")}}
        # Read by the reward function file in the client process.
        monkeypatch.setenv("PAYOFF_CONFIG" if reward.endswith(".toml") else "PAYOFF_REWARD", reward)
        monkeypatch.setenv("PAYOFF_WORKERS", "1")
        result = run_in(python, (ROOT / "tests/integrations/clients/openrlhf_paths.py").read_text(), json.dumps(spec))
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    want = expected(name)
    # The left-truncated prompt holds the answer; the response alone says "I do not know": an
    # error outcome (0.0 and counted), never prompt + response graded together.
    truncated = {"score": None, "status": "error", "components": {}}
    assert report["remote RM client"][-1]["prompt_tokens_kept"] < 128  # OpenRLHF did cut the prompt
    for path, cast in (("remote RM client", float), ("reward function file", float32)):
        got = [{k: out[k] for k in ("reward", "scores", "extra_logs")} for out in report[path]]
        TABLE.record("OpenRLHF 0.11.2", name, path, got[:-1], [_openrlhf_view(o, cast) for o in want])
        TABLE.record("OpenRLHF 0.11.2", name, f"{path}, prompt cut from the left", got[-1:], [_openrlhf_view(truncated, cast)])
    # Without the token the server refuses, and OpenRLHF keeps no reward (None), never a score.
    assert [out["reward"] for out in report["remote RM client, wrong token"]] == [None] * (len(SAMPLES) + 1)
