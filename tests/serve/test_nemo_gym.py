"""`payoff serve` as a NeMo-Gym resources server (single-turn), over real HTTP on 127.0.0.1:
the route mapping, the failure fields for abstain / error / timeout, and conformance with
NeMo-Gym 0.7.0's own request and response models, failure vocabulary and metrics code (run in
its own virtualenv, tests/serve/nemo/venv.py), outcomes compared exactly with `payoff.score`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from payoff.engine import score
from payoff.registry import get_reward
from payoff.serve.nemo_gym import verify_sample
from tests.serve.helpers import running_server

HERE = Path(__file__).resolve().parent
REWARD = f"{HERE / 'nemo' / 'rewards.py'}:nemo_demo"


def message(text: str, n: int = 0) -> dict:
    return {"id": f"msg_{n}", "content": [{"annotations": [], "text": text, "type": "output_text"}], "role": "assistant",
            "status": "completed", "type": "message"}


REASONING = {"id": "rs_0", "summary": [], "type": "reasoning"}
CALL = {"arguments": "{\"expression\": \"2+2\"}", "call_id": "c1", "name": "calc", "type": "function_call", "id": "fc_1", "status": "completed"}
TOOL_OUTPUT = {"call_id": "c1", "output": "4", "type": "function_call_output"}
QUESTION = [{"content": "Answer with a number only.", "role": "developer", "type": "message"},
            {"content": "What is 2 + 2?", "role": "user", "type": "message"}]
# (name, output items, row fields, task): the reward sees only the final assistant message's text
CASES = [
    ("right", [REASONING, message("4")], {"expected_answer": "4"}, 0),
    ("wrong", [message("5")], {"expected_answer": "4"}, 0),
    ("tool then right", [REASONING, CALL, TOOL_OUTPUT, message("4", 1)], {"expected_answer": "4"}, 1),
    ("tool output is not the answer", [CALL, TOOL_OUTPUT, message("I do not know.", 1)], {"expected_answer": "4", "source": "gsm"}, 1),
    ("abstain", [message("4")], {"source": "no reference"}, 2),
    ("error", [message("RAISE")], {"expected_answer": "4"}, 2),
    ("timeout", [message("SLEEP")], {"expected_answer": "4"}, 3),
]
EXPECTED = {  # name: (payoff status, reward, mask_sample, failure_kind)
    "right": ("ok", 1.0, False, None), "wrong": ("ok", 0.0, False, None), "tool then right": ("ok", 1.5, False, None),
    "tool output is not the answer": ("ok", 0.5, False, None), "abstain": ("abstain", 0.0, True, "payoff:abstain"),
    "error": ("error", 0.0, True, "verifier_error"), "timeout": ("timeout", 0.0, True, "payoff:timeout"),
}


def body(output: list, row: dict, task: int) -> dict:
    return {"responses_create_params": {"input": QUESTION, "instructions": None, "tools": []},
            "response": {"id": "resp_1", "output": output}, **row, "_ng_task_index": task}


@pytest.fixture(scope="module")
def server():
    with running_server("--reward", REWARD, "--timeout-s", "2", "--workers", "1") as (url, _):
        yield url


def test_the_mapping_grades_only_the_final_assistant_text() -> None:
    sample = verify_sample(body([REASONING, CALL, TOOL_OUTPUT, message("I do not know.", 1)], {"expected_answer": "4", "source": "gsm"}, 1))
    assert sample.completion == "I do not know." and sample.reference == "4" and sample.group == 1
    assert sample.prompt == [{"role": "developer", "content": "Answer with a number only."}, {"role": "user", "content": "What is 2 + 2?"}]
    assert sample.meta == {"source": "gsm", "output_tools": [{"id": "c1", "type": "function", "function": {
        "name": "calc", "arguments": "{\"expression\": \"2+2\"}"}}]}
    assert verify_sample({"responses_create_params": {"input": "hi", "instructions": "Be brief."},
                          "response": {"output": []}}).prompt == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]


def test_routes_over_http(server) -> None:
    for name, output, row, task in CASES[:2]:
        answer = httpx.post(f"{server}/verify", json=body(output, row, task), timeout=60).json()
        status, reward, masked, kind = EXPECTED[name]
        assert (answer["payoff_status"], answer["reward"], answer["mask_sample"], answer["failure_kind"]) == (status, reward, masked, kind)
        assert answer["reward_components"]["exact"] == reward and answer["expected_answer"] == "4"  # the request is echoed
    assert httpx.post(f"{server}/seed_session", json={"resources_session_id": "a", "episode_id": "e", "task_id": "t",
                                                      "task_data": {}}).json() == {"resources_session_id": "a"}
    assert httpx.post(f"{server}/close_session", json={"resources_session_id": "a", "episode_id": "e"}).json() == {"resources_session_id": "a"}
    bad = httpx.post(f"{server}/verify", json={"response": {"output": []}})
    assert bad.status_code == 422 and "responses_create_params" in bad.json()["error"]
    assert httpx.post(f"{server}/verify", content=b"{not json").status_code == 400
    assert httpx.post(f"{server}/close_session", json={}).status_code == 422
    responses = [{"reward": 1.0, "_ng_task_index": 0}, {"reward": 0.0, "_ng_task_index": 0},
                 {"reward": 0.0, "mask_sample": True, "_ng_task_index": 1}]
    metrics = httpx.post(f"{server}/aggregate_metrics", json={"verify_responses": responses}).json()
    assert metrics["agent_metrics"]["mean/reward"] == 0.5 and metrics["agent_metrics"]["num_masked"] == 1
    assert metrics["group_level_metrics"] == [{"_ng_task_index": 0, "mean/reward": 0.5, "max/reward": 1.0, "min/reward": 0.0,
                                               "median/reward": 0.5, "std/reward": 0.5}]


def test_conformance_with_nemo_gym_itself(server, tmp_path) -> None:
    from tests.serve.nemo.venv import nemo_gym_python
    from tests.venvs import OFFLINE

    try:
        python, wheel = nemo_gym_python()
    except RuntimeError as error:
        if not any(marker in str(error) for marker in OFFLINE):
            raise  # a real failure to build it, not a registry out of reach
        pytest.skip(f"package registry unreachable, cannot build NeMo-Gym's virtualenv: {str(error).splitlines()[-1]}")
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps([{"input": QUESTION, "output": output, "row": row, "task": task} for _, output, row, task in CASES]))
    done = subprocess.run([str(python), str(HERE / "nemo" / "conformance.py"), server, str(cases)], capture_output=True, text=True,
                          timeout=600, env={"PYTHONPATH": str(wheel), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])

    # the same samples through payoff.score, in process: the same outcomes, exactly
    samples = [verify_sample(body(output, row, task)) for _, output, row, task in CASES]
    outcomes = score(samples, get_reward(REWARD), workers=1, timeout_s=2)
    for (name, *_), seen, outcome in zip(CASES, report["verify"], outcomes):
        status, reward, masked, kind = EXPECTED[name]
        assert (seen["payoff_status"], seen["reward"], seen["mask_sample"], seen["failure_kind"]) == (status, reward, masked, kind), name
        assert outcome.status == status and (outcome.score if outcome.is_ok else 0.0) == seen["reward"], name
        assert seen["reward_components"] == outcome.components and seen["kind_known"] and seen["echoed"], name
        assert (seen["failure_reason"] is None) is (status == "ok"), name
    assert report["seed"]["resources_session_id"] == "s-1" and report["legacy_seed"] == {} and report["close"] == {"resources_session_id": "s-1"}
    # NeMo-Gym's own metrics code and payoff's /aggregate_metrics agree on the unmasked mean
    ours = report["aggregate"]["payoff"]["agent_metrics"]
    assert ours["mean/reward"] == pytest.approx(report["aggregate"]["nemo_gym_mean"]) == pytest.approx((1.0 + 0.0 + 1.5 + 0.5) / 4)
    assert ours["num_masked"] == 3
