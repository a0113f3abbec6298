"""Run in the verl 0.9.1 venv (tests/venvs.py): payoff environments' tools through verl's own
agent-loop tool code, and print what the model would see as JSON.

verl's ``initialize_tools_from_config`` loads the tools from the YAML named by the composed
``ppo_trainer`` config's ``actor_rollout_ref.rollout.multi_turn.tool_config_path``; verl's
``ToolAgentLoop._call_tool`` (create, execute, release around every call, as in a rollout) calls
them, with the loop's two settings it reads taken from that config. Two trajectories
(``AgentData``) interleave their calls to show that each keeps its own episode.

Usage: python verl_tools.py '{"tool_config": "tools.yaml", "calls": [[trajectory, tool, arguments_json], ...],
                              "tools_kwargs": {...}}'
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from types import SimpleNamespace

import verl
from hydra import compose, initialize_config_dir
from verl.experimental.agent_loop.tool_agent_loop import AgentData, ToolAgentLoop
from verl.experimental.agent_loop.tool_parser import FunctionCall
from verl.tools.tool_registry import initialize_tools_from_config


def main() -> None:
    spec = json.loads(sys.argv[1])
    with initialize_config_dir(config_dir=os.path.join(os.path.dirname(verl.__file__), "trainer", "config"), version_base=None):
        config = compose(config_name="ppo_trainer", overrides=[
            "actor_rollout_ref.rollout.multi_turn.enable=true",
            f"actor_rollout_ref.rollout.multi_turn.tool_config_path={spec['tool_config']}"])
    multi_turn = config.actor_rollout_ref.rollout.multi_turn
    tools = initialize_tools_from_config(multi_turn.tool_config_path)
    loop = SimpleNamespace(tools={tool.name: tool for tool in tools}, max_tool_response_length=multi_turn.max_tool_response_length,
                           tool_response_truncate_side=multi_turn.tool_response_truncate_side)
    trajectories = {name: AgentData(messages=[], image_data=[], video_data=[], audio_data=None, mm_processor_kwargs=None, metrics={},
                                    request_id=name, tools_kwargs=spec["tools_kwargs"]) for name in {c[0] for c in spec["calls"]}}

    async def run() -> list[dict]:
        out = []
        for trajectory, tool, arguments in spec["calls"]:
            data = trajectories[trajectory]
            response, reward, metrics = await ToolAgentLoop._call_tool(loop, FunctionCall(name=tool, arguments=arguments),
                                                                       data.tools_kwargs, data)
            out.append({"trajectory": trajectory, "tool": tool, "text": response.text, "reward": reward})
        return out

    results = asyncio.run(run())
    from payoff.integrations import verl_tools

    open_before = len(verl_tools._episodes)
    trajectories.clear()  # verl drops a finished trajectory's AgentData: its episode closes
    gc.collect()
    print(json.dumps({"schemas": {t.name: t.tool_schema.model_dump(exclude_unset=True, exclude_none=True) for t in tools},
                      "results": results, "open_before": open_before, "open_after": len(verl_tools._episodes),
                      "max_tool_response_length": multi_turn.max_tool_response_length}))


if __name__ == "__main__":
    main()
