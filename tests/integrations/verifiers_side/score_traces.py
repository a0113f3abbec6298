"""Run inside the verifiers 0.4.0 virtualenv (tests/integrations/test_verifiers.py), never imported
by payoff's tests: rollouts as verifiers' own `Trace`s, scored by verifiers' own `Task.score` with
payoff rewards plugged through `TaskConfig.rewards` (verifiers' loader imports them by path, its
`invoke` passes `task` and `trace` by name), all traces at once on one event loop, as a
verifiers run scores them. A reward that raises is recorded on the trace as verifiers does
(`trace.record_error`). Prints one JSON line per trace.

    python score_traces.py REWARDS_FILE CASES_JSON
"""

import asyncio
import json
import sys

import verifiers.v1 as vf
from verifiers.v1.graph import MessageNode
from verifiers.v1.trace import AgentInfo, Trace, TraceTask
from verifiers.v1.types import AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage


class QAData(vf.TaskData):
    answer: str | None = None
    source: str | None = None


class QATask(vf.Task[QAData]):
    pass


def node(message, parent, sampled=False):
    return MessageNode(message=message, parent=parent, sampled=sampled)


def trace_for(case, data):
    nodes = [node(SystemMessage(content=case["system"]), None), node(UserMessage(content=case["prompt"]), 0)]
    for turn in case["turns"]:
        parent = len(nodes) - 1
        if turn["role"] == "assistant":
            calls = [ToolCall(id=c["id"], name=c["name"], arguments=c["arguments"]) for c in turn.get("tool_calls", [])] or None
            nodes.append(node(AssistantMessage(content=turn.get("content"), tool_calls=calls), parent, sampled=True))
        else:
            nodes.append(node(ToolMessage(tool_call_id=turn["tool_call_id"], content=turn["content"]), parent))
    return Trace(task=TraceTask(type="qa", data=data), agent=AgentInfo(config=vf.AgentConfig()), nodes=nodes)


async def main(rewards_file, cases):
    config = vf.TaskConfig(rewards={name: {"fn": f"{rewards_file}:{name}"} for name in ("demo", "math")})
    scored = []
    for case in cases:
        data = QAData(prompt=case["prompt"], system_prompt=case["system"], answer=case["answer"], source=case.get("source"))
        scored.append((QATask(data, config), trace_for(case, data)))

    async def score(task, trace):
        try:
            await task.score(trace)
            trace.ok = True
        except vf.RolloutError as error:  # what a verifiers rollout does with a scoring error
            trace.record_error(error)

    await asyncio.gather(*(score(task, trace) for task, trace in scored))
    for _, trace in scored:
        print(json.dumps({"reward": trace.reward, "rewards": {k: (v.score if v else None) for k, v in trace.rewards.items()},
                          "metrics": trace.metrics, "ok": trace.ok, "errors": [e.message for e in trace.errors],
                          "last_reply": trace.last_reply}))


asyncio.run(main(sys.argv[1], json.loads(open(sys.argv[2]).read())))
