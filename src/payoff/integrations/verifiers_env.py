"""A payoff environment as a verifiers 0.4.0 toolset (``verifiers.v1``), with its reward as the
task's rubric.

verifiers 0.4.0 has no ``MultiTurnEnv`` / ``ToolEnv`` any more: a task's tools are ``Toolset``
MCP servers that verifiers starts per rollout (``python -m <the toolset's module>``, in a
subprocess or a sandbox), hands the task to (``setup_task``), and stops when the rollout ends.
`PayoffToolset` is such a server for any tool-calling payoff environment: its tools are the
environment's (the same names, descriptions, argument types and required arguments; MCP checks
the arguments against them before the call), answered by the environment as in `run_episode`
(per-call time limit, a tool that raises or hangs becomes a message that says so, output
capped). One rollout is one episode: the environment is reset on the task's row (its
``model_dump``; the ``sql`` environment reads ``reference.db`` there, or takes ``db`` in
``params``) and closed when verifiers stops the server.

The reward is `payoff.integrations.verifiers.verifiers_reward` (abstain mapped by its stated
policy; error and timeout raised so verifiers records them), as a ``@vf.reward`` method or
plugged through ``TaskConfig.rewards``::

    class CalculatorTask(vf.Task[MathData]):
        @classmethod
        def toolsets(cls, config):
            return [PayoffToolset(PayoffToolsetConfig(env="calculator"))]

        @vf.reward(weight=1.0)
        async def correct(self, trace: vf.Trace) -> float:
            return await correct(self.data, trace)   # correct = verifiers_reward("math")
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import verifiers.v1 as vf

from payoff.envs import Environment, get_env
from payoff.integrations.tools import answer_call, tool_function


class PayoffToolsetConfig(vf.ToolsetConfig):
    env: str = "calculator"
    """The payoff environment (`payoff.envs.get_env`)."""
    params: dict[str, Any] = {}
    """Its options (``call_timeout_s``, ``max_output_chars``, the sql environment's ``db``, ...)."""
    row: dict[str, Any] = {}
    """The row to reset on when verifiers hands no task (a toolset served on its own)."""


class PayoffToolset(vf.Toolset[PayoffToolsetConfig]):
    TOOL_PREFIX = None  # the environment's own tool names, as the model is prompted with them

    def __init__(self, config: PayoffToolsetConfig) -> None:
        super().__init__(config)
        self.env: Environment | None = None
        self._row: dict[str, Any] = dict(config.row)

    async def setup(self) -> None:
        self.env = get_env(self.config.env, **self.config.params)
        self._exit_stack.callback(self._close)  # when verifiers stops the server: the episode's processes go

    async def setup_task(self, task: Any) -> None:
        data = getattr(task, "data", task)
        self._row = data.model_dump(mode="json") if hasattr(data, "model_dump") else dict(data)

    def register(self, mcp: Any) -> None:
        assert self.env is not None, "setup() first"
        _, tools = self.env.reset(self._row)
        for schema in tools:
            function = schema["function"]
            mcp.add_tool(self._with_state(tool_function(function, self._call)), name=function["name"],
                         description=function.get("description") or None)

    async def _call(self, name: str, arguments: dict[str, Any]) -> Any:
        assert self.env is not None
        # Off the server's event loop: a tool may take up to its time limit.
        content, _ = await asyncio.to_thread(answer_call, self.env, name, arguments, f"call_{uuid4().hex[:8]}")
        return content

    def _close(self) -> None:
        if self.env is not None:
            self.env.close()


if __name__ == "__main__":
    PayoffToolset.run()  # how verifiers starts a toolset: python -m <module>
