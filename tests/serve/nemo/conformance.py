"""Run inside the NeMo-Gym virtualenv (tests/serve/nemo/venv.py), never imported by payoff's tests.

Talks to a running `payoff serve` the way NeMo-Gym's side sees a resources server: request bodies
built and dumped by NeMo-Gym's own pydantic models (``BaseVerifyRequest`` from one of NeMo-Gym's
own example rollouts, with the input and output replaced; ``ResourcesSeedSessionRequest``,
``ResourcesCloseSessionRequest``, ``AggregateMetricsRequest``), every answer validated by its
response models, failure kinds checked against its vocabulary, and its own
``compute_aggregate_metrics`` run over the same verify responses. Prints one JSON object.

    python conformance.py URL CASES_JSON
"""

import json
import sys
from pathlib import Path

import httpx
import nemo_gym
from nemo_gym.base_resources_server import (
    BaseMultiRewardVerifyResponse,
    BaseVerifyRequest,
    ResourcesCloseSessionRequest,
    ResourcesCloseSessionResponse,
    ResourcesSeedSessionRequest,
    ResourcesSeedSessionResponse,
)
from nemo_gym.config_types import AggregateMetrics, AggregateMetricsRequest
from nemo_gym.episode_types import EpisodeId, TaskId
from nemo_gym.failure_kinds import is_namespaced, is_registered
from nemo_gym.reward_profile import compute_aggregate_metrics

url, cases = sys.argv[1], json.loads(Path(sys.argv[2]).read_text())
example = Path(nemo_gym.__file__).parent.parent / "resources_servers" / "example_tool_call_multireward" / "data" / "example_rollouts.jsonl"
template = json.loads(example.read_text().splitlines()[0])
http = httpx.Client(base_url=url, timeout=120)

report = {"verify": [], "seed": None, "close": None}
responses = []
for index, case in enumerate(cases):
    params = {**template["responses_create_params"], "input": case["input"]}
    response = {**template["response"], "output": case["output"]}
    request = BaseVerifyRequest.model_validate({"responses_create_params": params, "response": response})
    body = {**request.model_dump(mode="json"), **case["row"], "_ng_task_index": case["task"], "_ng_rollout_index": index}
    answer = http.post("/verify", json=body)
    answer.raise_for_status()
    data = answer.json()
    checked = BaseMultiRewardVerifyResponse.model_validate(data)  # NeMo-Gym's own response model
    kind = checked.failure_kind
    report["verify"].append({"reward": checked.reward, "reward_components": checked.reward_components, "mask_sample": checked.mask_sample,
                             "failure_kind": kind, "failure_reason": checked.failure_reason, "payoff_status": data["payoff_status"],
                             "kind_known": kind is None or is_registered(kind) or is_namespaced(kind),
                             "echoed": all(data.get(k) == v for k, v in case["row"].items())})
    responses.append({k: v for k, v in data.items() if k not in ("responses_create_params", "response")})

episode, task = EpisodeId(rollout_id="r-1"), TaskId(taskset="payoff:demo", task_id="t-1")
seed = ResourcesSeedSessionRequest(resources_session_id="s-1", episode_id=episode, task_id=task, task_data={"question": "2+2"})
report["seed"] = ResourcesSeedSessionResponse.model_validate(http.post("/seed_session", json=seed.model_dump(mode="json")).json()).model_dump()
report["legacy_seed"] = http.post("/seed_session", json={}).json()
close = ResourcesCloseSessionRequest(resources_session_id="s-1", episode_id=episode)
report["close"] = ResourcesCloseSessionResponse.model_validate(http.post("/close_session", json=close.model_dump(mode="json")).json()).model_dump()

aggregate = AggregateMetricsRequest(verify_responses=responses)
served = AggregateMetrics.model_validate(http.post("/aggregate_metrics", json=aggregate.model_dump(mode="json")).json())
theirs = compute_aggregate_metrics(responses)  # what NeMo-Gym itself makes of the same responses
report["aggregate"] = {"payoff": served.model_dump(), "nemo_gym_mean": theirs.agent_metrics.get("mean/reward"),
                       "nemo_gym_agent_metrics": {k: v for k, v in theirs.agent_metrics.items() if isinstance(v, (int, float))}}
print(json.dumps(report))
