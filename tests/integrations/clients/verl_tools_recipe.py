"""Stands in for ``python -m verl.trainer.main_ppo`` in the verl tools recipe of
docs/integrations.md: composes verl's own ``ppo_trainer`` config with the recipe's overrides,
resolves the agent loop it names in verl's registry, loads the tools from the config's
``tool_config_path`` with verl's loader, makes one call through ``ToolAgentLoop._call_tool`` and
finds the reward function verl would. Prints JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from types import SimpleNamespace

from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
from verl.experimental.agent_loop.tool_agent_loop import AgentData, ToolAgentLoop
from verl.experimental.agent_loop.tool_parser import FunctionCall
from verl.tools.tool_registry import initialize_tools_from_config

from tests.integrations.clients.verl_paths import config

if __name__ == "__main__":
    cfg = config(sys.argv[1:])
    rollout = cfg.actor_rollout_ref.rollout
    tools = initialize_tools_from_config(rollout.multi_turn.tool_config_path)
    loop = SimpleNamespace(tools={t.name: t for t in tools}, max_tool_response_length=rollout.multi_turn.max_tool_response_length,
                           tool_response_truncate_side=rollout.multi_turn.tool_response_truncate_side)
    data = AgentData(messages=[], image_data=[], video_data=[], audio_data=None, mm_processor_kwargs=None, metrics={},
                     request_id="r", tools_kwargs={})
    response, _, _ = asyncio.run(ToolAgentLoop._call_tool(loop, FunctionCall(name="python", arguments='{"code": "print(6 * 7)"}'),
                                                          {}, data))
    print(json.dumps({"enable": rollout.multi_turn.enable, "agent_loop": rollout.agent.default_agent_loop,
                      "agent_loop_class": _agent_loop_registry[rollout.agent.default_agent_loop]["_target_"],
                      "tools": sorted(loop.tools), "python": response.text,
                      "reward": [cfg.reward.custom_reward_function.path, cfg.reward.custom_reward_function.name,
                                 cfg.reward.custom_reward_function.reward_kwargs.reward]}))
