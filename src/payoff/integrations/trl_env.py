"""A payoff environment under TRL's environment support (``GRPOTrainer(environment_factory=...)``,
TRL 1.16, experimental there).

TRL's contract: the factory returns an object whose public methods are the tools (TRL renders
their schemas from type hints and Google-style docstrings, and calls them with the parsed
arguments), whose ``reset(**row)`` starts a rollout, and which TRL pools and resets across
batches without ever closing it. TRL runs the tool loop itself: the model's text is parsed for
tool calls, each is answered with one ``tool`` message, and the rollout ends at the first
assistant turn without calls. So only tool-calling environments fit; one that answers the final
message itself (``feedback``: a user turn saying "try again") is refused, as TRL would never show
it that message.

`trl_environment` builds, from a payoff environment:

- ``factory``: TRL's ``environment_factory``. Each instance holds one payoff environment; its
  tool methods step the environment with a one-call assistant message, so payoff answers the call
  (argument checks against the schema, time limits, errors as tool messages, output caps);
- ``reward_func``: a TRL ``reward_funcs`` entry scoring the finished episode with the
  environment's reward on this process's shared engine. The episode is TRL's prompt plus its
  completion (assistant turns and tool results) as payoff messages; what is graded is what the
  model wrote, the final assistant turn (a tool's output never earns the reward), and episode
  rewards see the whole trajectory and the offered tool schemas. The environment is closed once
  scored (and at exit), releasing what the episode held (a Python session, a database);
- ``rows(rows)``: dataset rows whose ``prompt`` is the environment's opening (its system prompt
  and the row's prompt), so the model sees what `run_episode` would show it.

Abstain, error and timeout come back as None (TRL: no reward from this function), as with
`payoff.integrations.trl.trl_reward`; statuses and components go to TRL's ``log_extra`` /
``log_metric``.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from payoff.core import Outcome, Reward, SampleError
from payoff.envs import Environment, ToolEnv, get_env
from payoff.envs.runner import episode_sample
from payoff.integrations.common import resolve_reward
from payoff.integrations.tools import answer_call, tool_function
from payoff.integrations.trl import TRL_KEYWORDS, group_ids, log_outcomes

# TRL's own names on an environment: a tool may not take them.
_RESERVED = frozenset({"reset", "get_reward"})


@dataclass
class TrlEnvironment:
    """What `trl_environment` returns: ``factory`` (TRL's environment_factory), ``reward_func``
    (for ``reward_funcs``), ``rows`` (dataset rows with the environment's opening as prompt)."""

    make_env: Callable[[], Environment]
    tools: list[dict[str, Any]]
    factory: Callable[[], Any]
    reward_func: Callable[..., list[float | None]]
    name: str = ""

    def rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`rows` with ``prompt`` replaced by the environment's opening messages for each row."""
        out = []
        for row in rows:
            env = self.make_env()
            try:
                messages, _ = env.reset(dict(row))
            finally:
                env.close()
            out.append({**row, "prompt": [dict(m) for m in messages]})
        return out


def trl_environment(env: str | Callable[[], Environment], *, row: dict[str, Any] | None = None,
                    reward: str | Reward | Callable[..., Any] | None = None, workers: int = 2, timeout_s: float | None = None,
                    name: str | None = None, **params: Any) -> TrlEnvironment:
    """Wrap payoff environment `env` for TRL: a registered name, built with `params` and `reward`
    as by `payoff.envs.get_env` (`reward` may also be a rubric ``.toml``), or a zero-argument
    factory. The tool schemas are read by resetting one environment on `row` (default: an empty
    row; the ``sql`` environment needs a row or a ``db``): TRL needs them before the first batch,
    and every later reset must offer the same tools (a row that changes them is an error that
    says so). The episode's reward scores on this process's shared engine (`workers`,
    `timeout_s`)."""
    from payoff.engine.shared import shared_engine

    if isinstance(env, str):
        env_name = env
        reward = resolve_reward(reward) if reward is not None else None  # a name, a rubric .toml, a Reward

        def make_env() -> Environment:
            return get_env(env_name, reward=reward, **params)
    else:
        if params or reward is not None:
            raise TypeError("params and reward apply to a registered environment name; build them into your factory")
        env_name = getattr(env, "__name__", type(env).__name__)
        make_env = env
    probe = make_env()
    try:
        _refuse_unfit(probe, env_name)
        _, tools = probe.reset(dict(row or {}))
    finally:
        probe.close()
    if not tools:
        raise ValueError(f"environment {env_name!r} offers no tools: TRL's environment support has nothing to call")
    if probe.reward is None:
        raise ValueError(f"environment {env_name!r} has no reward; pass reward=")
    cls = _environment_class(env_name, tools)
    engine = shared_engine(probe.reward, workers=workers, timeout_s=timeout_s)
    func_name = name or f"payoff_{env_name}_{engine.reward.name}".replace("+", "_").replace("*", "x")

    def factory() -> Any:
        return cls(make_env(), tools)

    reward_func = _reward_func(engine, tools, func_name)
    return TrlEnvironment(make_env=make_env, tools=tools, factory=factory, reward_func=reward_func, name=env_name)


def _refuse_unfit(env: Environment, name: str) -> None:
    if isinstance(env, ToolEnv) and type(env).finish is not ToolEnv.finish:
        raise ValueError(f"environment {name!r} answers the model's final message itself ({type(env).__name__}.finish); "
                         "TRL's environment support ends a rollout there and never shows it that message")


class PayoffEnvironment:
    """The base of the classes `trl_environment` makes: one payoff environment, one episode per
    ``reset``. Tool methods are added per environment (TRL lists them on the class)."""

    def __init__(self, env: Environment, tools: list[dict[str, Any]]) -> None:
        self._env = env
        self._tools = tools
        self._open = False
        self._calls = 0
        self._row: dict[str, Any] = {}
        self._done = False
        # TRL never closes what it pools: release the episode when the object goes, or at exit.
        self._finalizer = weakref.finalize(self, _close_quietly, env)

    def reset(self, **row: Any) -> None:
        """TRL's start of a rollout (its dataset row as keywords): a new payoff episode on it."""
        self._close()
        self._row, self._calls, self._done = dict(row), 0, False
        _, tools = self._env.reset(dict(row))
        self._open = True
        if tools != self._tools:
            raise ValueError(f"this row's tools differ from those TRL was given at start: {_names(tools)} vs {_names(self._tools)}")
        return None  # the dataset's prompt is the opening (TrlEnvironment.rows): nothing to append

    def _call(self, name: str, arguments: dict[str, Any]) -> Any:
        """One tool call, answered by the payoff environment (its checks, limits and error messages)."""
        self._calls += 1
        content, done = answer_call(self._env, name, arguments, f"call_{self._calls}")
        self._done = self._done or done
        return content

    def _close(self) -> None:
        if self._open:
            self._open = False
            self._env.close()


def _close_quietly(env: Environment) -> None:
    try:
        env.close()
    except Exception:  # noqa: BLE001, S110 - at exit or collection there is no one left to tell
        pass


def _names(tools: list[dict[str, Any]]) -> list[str]:
    return [(t.get("function") or {}).get("name") for t in tools]


def _environment_class(env_name: str, tools: list[dict[str, Any]]) -> type:
    methods = {}
    for schema in tools:
        function = schema.get("function") or {}
        methods[function.get("name")] = tool_function(function, PayoffEnvironment._call, method=True, reserved=_RESERVED)
    cls_name = "Payoff" + "".join(part.capitalize() for part in env_name.replace("-", "_").split("_") if part.isidentifier()) + "Env"
    return type(cls_name if cls_name.isidentifier() else "PayoffEnv", (PayoffEnvironment,), methods)


def trl_messages(prompt: Any, completion: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """TRL's prompt and conversational completion as one payoff trajectory. TRL's tool calls carry
    no ids and parsed arguments, and its tool messages no ``tool_call_id``: calls get ids in order
    and each tool message answers the oldest unanswered call, as TRL appends them."""
    opening = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    messages, pending, count = [], [], 0
    for message in [*opening, *completion]:
        message = dict(message)
        if message.get("role") == "assistant" and message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                call = dict(call)
                function = dict(call.get("function") or {})
                if not isinstance(function.get("arguments"), str):
                    function["arguments"] = json.dumps(function.get("arguments"))
                count += 1
                call.setdefault("id", f"call_{count}")
                call.setdefault("type", "function")
                call["function"] = function
                pending.append(call["id"])
                calls.append(call)
            message["tool_calls"] = calls
        elif message.get("role") == "tool" and not message.get("tool_call_id") and pending:
            message["tool_call_id"] = pending.pop(0)
        messages.append(message)
    return messages


def _reward_func(engine: Any, tools: list[dict[str, Any]], func_name: str) -> Callable[..., list[float | None]]:
    last_outcomes: list[Outcome] = []

    def reward_func(prompts: list[Any] | None = None, completions: list[Any] | None = None, environments: list[Any] | None = None,
                    **columns: Any) -> list[float | None]:
        completions = completions or []
        prompts = prompts if prompts is not None else [[]] * len(completions)
        data = {k: v for k, v in columns.items() if k not in TRL_KEYWORDS}
        step = columns.get("trainer_state").global_step if columns.get("trainer_state") is not None else None
        groups = group_ids(prompts)
        samples, outcomes = [], [None] * len(completions)
        for i, completion in enumerate(completions):
            # The reference is the row's reference / answer / solution / ground_truth / gold column.
            row = {key: values[i] for key, values in data.items()}
            env = environments[i] if environments is not None else None
            try:
                if not isinstance(completion, list):
                    raise SampleError("the completion is plain text: TRL's environments run on conversational prompts")
                offered = env._tools if isinstance(env, PayoffEnvironment) else tools
                sample = episode_sample(trl_messages(prompts[i], completion), row, offered)
                sample.meta.update({"step": step} if step is not None else {})
                sample.group = groups[i]
                samples.append((i, sample))
            except SampleError as error:
                outcomes[i] = Outcome.error(f"completion {i} is not a valid episode: {error}")
        for (i, _), outcome in zip(samples, engine.score([s for _, s in samples]) if samples else []):
            outcomes[i] = outcome
        for env in environments or []:
            if isinstance(env, PayoffEnvironment):
                env._close()  # scored: release what the episode held until TRL resets it
        last_outcomes[:] = outcomes
        log_outcomes(func_name, outcomes, columns.get("log_extra"), columns.get("log_metric"))
        return [float(o.score) if o.status == "ok" else None for o in outcomes]

    reward_func.__name__ = func_name
    reward_func.engine = engine  # type: ignore[attr-defined]
    reward_func.last_outcomes = last_outcomes  # type: ignore[attr-defined]
    return reward_func
