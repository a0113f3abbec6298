"""A payoff environment's tools as verl 0.9.1 agent-loop tools (``BaseTool``), declared in verl's
tool config (``actor_rollout_ref.rollout.multi_turn.tool_config_path``)::

    tools:
      - class_name: payoff.integrations.verl_tools.PayoffTool
        config: {type: native, env: python, tool: python, params: {call_timeout_s: 10}}
      - class_name: payoff.integrations.verl_tools.PayoffTool
        config: {type: native, env: sql, tool: schema}

Each entry is one tool of the named environment (`payoff.envs.get_env`; ``params`` are its
options); its schema is the environment's own (leave ``tool_schema`` out). The calls are
answered by the environment as in `run_episode`: arguments checked against the schema, the
per-call time limit, a failing tool becomes a message that says so.

verl's ``ToolAgentLoop`` creates and releases a tool instance around every single call, so the
episode cannot live in the instance: the tools of one environment share one episode per
trajectory, keyed by verl's ``AgentData`` (passed to ``execute``), started on the trajectory's
first call (``env.reset`` on the row's ``tools_kwargs.<tool>.create_kwargs``; the ``sql``
environment reads its database there: ``{"reference": {"db": ...}}``) and closed when verl drops
the trajectory's ``AgentData`` or at exit. verl scores the finished trajectory with its reward
function on the decoded response (`payoff.integrations.verl`), so the step reward is 0.0.
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any
from uuid import uuid4

from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from payoff.envs import Environment, get_env
from payoff.integrations.tools import answer_call

# (environment spec, trajectory) -> the trajectory's episode; dropped with the trajectory.
_episodes: dict[tuple[str, int], Environment] = {}
_lock = threading.Lock()


def _spec(config: dict[str, Any]) -> str:
    return json.dumps({"env": config["env"], "params": config.get("params") or {}, "reward": config.get("reward")}, sort_keys=True)


def _make(config: dict[str, Any]) -> Environment:
    return get_env(config["env"], reward=config.get("reward"), **(config.get("params") or {}))


def environment_tools(config: dict[str, Any], row: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The tool schemas of the environment `config` names, as offered on `row`."""
    env = _make(config)
    try:
        return env.reset(dict(row or {}))[1]
    finally:
        env.close()


class PayoffTool(BaseTool):
    """One tool of a payoff environment (see the module's docstring)."""

    def __init__(self, config: dict, tool_schema: OpenAIFunctionToolSchema | None = None) -> None:
        if "env" not in config or "tool" not in config:
            raise ValueError("a payoff tool's config needs 'env' (an environment name) and 'tool' (one of its tools)")
        schemas = {s["function"]["name"]: s for s in environment_tools(config, config.get("row"))}
        if config["tool"] not in schemas:
            raise ValueError(f"environment {config['env']!r} has no tool {config['tool']!r}; its tools are {sorted(schemas)}")
        if tool_schema is None:
            tool_schema = OpenAIFunctionToolSchema.model_validate(schemas[config["tool"]])
        super().__init__(config, tool_schema)
        self._spec = _spec(config)
        self._kwargs: dict[str, dict[str, Any]] = {}

    async def create(self, instance_id: str | None = None, **kwargs: Any) -> tuple[str, ToolResponse]:
        instance_id = instance_id or str(uuid4())
        self._kwargs[instance_id] = dict(kwargs.get("create_kwargs") or {})
        return instance_id, ToolResponse()

    async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs: Any) -> tuple[ToolResponse, float, dict]:
        import asyncio

        trajectory = kwargs.get("agent_data")
        env = self._episode(trajectory, self._kwargs.get(instance_id, {}))
        # The environment's own limits bound the call; off the event loop, as tools may block.
        content, _ = await asyncio.to_thread(answer_call, env, self.name, parameters, f"call_{uuid4().hex[:8]}")
        return ToolResponse(text=content or ""), 0.0, {}

    async def release(self, instance_id: str, **kwargs: Any) -> None:
        self._kwargs.pop(instance_id, None)  # the episode lives on with its trajectory

    def _episode(self, trajectory: Any, row: dict[str, Any]) -> Environment:
        if trajectory is None:
            raise RuntimeError("verl passed no agent_data: a payoff tool needs the trajectory to keep its episode")
        key = (self._spec, id(trajectory))
        with _lock:
            env = _episodes.get(key)
            if env is None:
                env = _make(self.config)
                env.reset(row)
                _episodes[key] = env
                weakref.finalize(trajectory, _end, key)
        return env


def _end(key: tuple[str, int]) -> None:
    with _lock:
        env = _episodes.pop(key, None)
    if env is not None:
        env.close()


def close_all() -> None:
    """Close every open episode (at exit, or between runs in one process)."""
    for key in list(_episodes):
        _end(key)
