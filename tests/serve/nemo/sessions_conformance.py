"""Run inside the NeMo-Gym virtualenv (tests/serve/nemo/venv.py), never imported by payoff's tests.

A multi-turn episode with a payoff environment, played by NeMo-Gym's own code against a running
`payoff serve --env calculator`:

1. NeMo-Gym's ``SimpleAgent`` (responses_api_agents/simple_agent), served by uvicorn in this
   process, runs its legacy ``/run``: ``/seed_session`` on payoff, its model loop, every tool
   call as ``POST /<tool>`` on payoff with the cookies the seed set, then ``/verify`` with them.
   The model is a scripted Responses API server (the policy: it calls the calculator, then
   answers with whatever the tool returned, so the reward shows that the tool's output came
   back through NeMo-Gym). Its answer is validated by ``SimpleAgentVerifyResponse``.
2. The Environment Server's sequence (environment_servers/single_agent_turn), with NeMo-Gym's
   request and response models: typed ``ResourcesSeedSessionRequest`` (a cookie is required),
   a repeated seed, a tool call, ``/verify``, ``/close_session`` twice, a close of a
   never-seeded id, and seeds after close (must be refused), as
   ``nemo_gym.testing.session_conformance.check_resources_session_contract`` checks them
   (that helper takes an in-process FastAPI app, so its steps are replayed here over HTTP).

    python sessions_conformance.py PAYOFF_URL
Prints one JSON object.
"""

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import nemo_gym
import uvicorn
from fastapi import FastAPI, Request
from nemo_gym.base_resources_server import (
    BaseMultiRewardVerifyResponse,
    ResourcesCloseSessionRequest,
    ResourcesCloseSessionResponse,
    ResourcesSeedSessionRequest,
    ResourcesSeedSessionResponse,
)
from nemo_gym.config_types import ModelServerRef, ResourcesServerRef
from nemo_gym.episode_types import EpisodeId, TaskId
from nemo_gym.openai_utils import NeMoGymResponse
from nemo_gym.server_utils import ServerClient
from omegaconf import OmegaConf
from responses_api_agents.simple_agent.app import SimpleAgent, SimpleAgentConfig, SimpleAgentVerifyResponse

payoff_url = sys.argv[1]
payoff_host, payoff_port = payoff_url.removeprefix("http://").split(":")
example = Path(nemo_gym.__file__).parent.parent / "resources_servers" / "example_tool_call_multireward" / "data" / "example_rollouts.jsonl"
template = json.loads(example.read_text().splitlines()[0])
CALCULATOR = [{"type": "function", "name": "calculator", "description": "Evaluate an arithmetic expression.", "strict": False,
               "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"],
                              "additionalProperties": False}}]
QUESTION = [{"role": "user", "content": "What is 6 * 7?", "type": "message"}]
seen_by_model: list[list[dict]] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(app: FastAPI, port: int) -> None:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)


model = FastAPI()


@model.post("/v1/responses")
async def respond(request: Request) -> dict:
    """The scripted policy: a calculator call first; then the tool's output as the answer."""
    body = await request.json()
    items = body["input"]
    seen_by_model.append(items)
    outputs = [item for item in items if item.get("type") == "function_call_output"]
    if not outputs:
        output = [{"arguments": json.dumps({"expression": "6 * 7"}), "call_id": "call_1", "name": "calculator",
                   "type": "function_call", "id": "fc_1", "status": "completed"}]
    else:
        output = [{"id": "msg_1", "role": "assistant", "status": "completed", "type": "message",
                   "content": [{"annotations": [], "text": f"The answer is \\boxed{{{outputs[-1]['output']}}}.", "type": "output_text"}]}]
    return NeMoGymResponse.model_validate({**template["response"], "output": output}).model_dump(mode="json")


model_port, agent_port = free_port(), free_port()
serve(model, model_port)
config = OmegaConf.create({
    "simple_agent": {"responses_api_agents": {"simple_agent": {"host": "127.0.0.1", "port": agent_port}}},
    "payoff": {"resources_servers": {"payoff": {"host": payoff_host, "port": int(payoff_port)}}},
    "model": {"responses_api_models": {"scripted": {"host": "127.0.0.1", "port": model_port}}},
})
# As NeMo-Gym's launcher hands it to each server process it starts.
os.environ["NEMO_GYM_CONFIG_DICT"] = OmegaConf.to_yaml(config)
client = ServerClient(head_server_config={"host": "127.0.0.1", "port": 1}, global_config_dict=config)
agent = SimpleAgent(config=SimpleAgentConfig(host="127.0.0.1", port=agent_port, entrypoint="", name="simple_agent",
                                             model_server=ModelServerRef(type="responses_api_models", name="model"),
                                             resources_server=ResourcesServerRef(type="resources_servers", name="payoff")),
                    server_client=client)
serve(agent.setup_webserver(), agent_port)

report: dict = {}
run_body = {"responses_create_params": {"input": QUESTION, "tools": CALCULATOR}, "reference": "42", "env": "calculator"}
ran = httpx.post(f"http://127.0.0.1:{agent_port}/run", json=run_body, timeout=120)
report["run_status"] = ran.status_code
if ran.status_code == 200:
    verified = SimpleAgentVerifyResponse.model_validate(ran.json())  # NeMo-Gym's own response model
    data = ran.json()
    report["run"] = {"reward": verified.reward, "mask_sample": verified.mask_sample, "failure_kind": verified.failure_kind,
                     "reward_components": data.get("reward_components"), "payoff_status": data.get("payoff_status"),
                     "payoff_episode": data.get("payoff_episode"),
                     "output_types": [item["type"] for item in data["response"]["output"]],
                     "tool_output": next((item["output"] for item in data["response"]["output"] if item["type"] == "function_call_output"), None)}
else:
    report["run_error"] = ran.text[-2000:]
report["model_calls"] = len(seen_by_model)

# The Environment Server's sequence, with NeMo-Gym's models.
http = httpx.Client(base_url=payoff_url, timeout=60)
episode, task = EpisodeId(rollout_id="r-1"), TaskId(taskset="payoff:calculator", task_id="t-1")
seed = ResourcesSeedSessionRequest(resources_session_id="rs-1", episode_id=episode, task_id=task,
                                   task_data={"prompt": "What is 6 * 7?", "reference": "42", "env": "calculator"})
first = http.post("/seed_session", json=seed.model_dump(mode="json"))
cookies = dict(first.cookies)
report["seed"] = {"status": first.status_code, "cookie": bool(cookies),
                  "answer": ResourcesSeedSessionResponse.model_validate(first.json()).model_dump()}
again = http.post("/seed_session", json=seed.model_dump(mode="json"))
report["repeated_seed_same_session"] = again.status_code == 200 and dict(again.cookies) == cookies
tool = http.post("/calculator", json={"expression": "40 + 2"}, cookies=cookies)
report["tool"] = {"status": tool.status_code, "text": tool.text}
verify_body = {**seed.task_data, "responses_create_params": {"input": QUESTION, "tools": CALCULATOR},
               "response": {**template["response"], "output": [
                   {"id": "msg_2", "role": "assistant", "status": "completed", "type": "message",
                    "content": [{"annotations": [], "text": "\\boxed{42}", "type": "output_text"}]}]}}
verified = http.post("/verify", json=verify_body, cookies=cookies)
checked = BaseMultiRewardVerifyResponse.model_validate(verified.json())
report["typed_verify"] = {"reward": checked.reward, "mask_sample": checked.mask_sample, "payoff_episode": verified.json().get("payoff_episode")}
close = ResourcesCloseSessionRequest(resources_session_id="rs-1", episode_id=episode)
report["close"] = [ResourcesCloseSessionResponse.model_validate(http.post("/close_session", json=close.model_dump(mode="json"),
                                                                          cookies=cookies).json()).model_dump() for _ in range(2)]
never = ResourcesCloseSessionRequest(resources_session_id="rs-1-never-seeded", episode_id=episode)
report["close_never_seeded"] = http.post("/close_session", json=never.model_dump(mode="json")).status_code
late = [seed, seed.model_copy(update={"resources_session_id": "rs-1-never-seeded"})]
report["seed_after_close"] = [http.post("/seed_session", json=s.model_dump(mode="json")).status_code for s in late]
report["tool_after_close"] = http.post("/calculator", json={"expression": "1"}, cookies=cookies).status_code
print(json.dumps(report), flush=True)
os._exit(0)  # NeMo-Gym's atexit hook closes its aiohttp client on a loop of its own, which fails noisily here
