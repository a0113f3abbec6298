"""The options every command shares, declared once, and the one resolver of the reward a command
was given. docs/cli.md states the conventions; tests/cli/test_conventions.py checks them."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from payoff.compose import Rubric, RubricConfigError, Term, load_rubric
from payoff.core import Reward
from payoff.registry import RewardNotFound, get_reward

# -- the reward a command scores with ---------------------------------------------------------------
REWARD = typer.Option([], "--reward", "-r", metavar="NAME[:WEIGHT]",
                      help="A reward: a registered name, module:function or file.py:function, with an optional weight; "
                           "repeat to score with their weighted sum.")
CONFIG = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="A rubric TOML (its reward table); instead of --reward.")
SET = typer.Option([], "--set", metavar="KEY=VALUE", help="Override a value of the TOML config: dotted.key=value (a TOML value); repeatable.")
WORKERS = typer.Option(None, "--workers", "-w", min=0, help="Scoring worker processes (0: in this process, no timeouts; default: one per CPU).")
TIMEOUT_S = typer.Option(None, "--timeout-s", "-t", min=0.001,
                         help="Seconds per sample (per group for group rewards, per batch for batched ones); default: the reward's own, else 30.")
GOLD = typer.Option("math", "--gold", help="The reward that decides correctness (a name, module:function or file.py:function).")

# -- environments: episodes instead of completions (`select`, `rm sample`), sessions (`serve`) ----------
ENV = typer.Option(None, "--env", metavar="NAME",
                   help="An environment (docs/environments.md). select, rm sample: draw episodes in it, not completions; "
                        "serve: the one a NeMo-Gym /seed_session opens when its row names none.")
ENV_SET = typer.Option([], "--env-set", metavar="KEY=VALUE",
                       help="With --env: a key of the training config's [env] table (max_turns, max_tool_calls, max_tokens, "
                            "wall_s, workers, reward, options.NAME), as a TOML value; repeatable.")

# -- where results go -------------------------------------------------------------------------------
REPORT = typer.Option(None, "--report", metavar="DIR", help="Write DIR/report.json and DIR/report.md (and the command's plots).")

# -- trainers ----------------------------------------------------------------------------------------
RUN_CONFIG = typer.Argument(None, help="The run's TOML config (its page in docs/ lists every key); defaults apply without one.")
RESUME = typer.Option(None, "--resume", metavar="RUN_DIR", help="Continue the run in this folder from its newest checkpoint.")


def parse_reward_option(option: str) -> tuple[str, float]:
    """``NAME`` or ``NAME:WEIGHT``; NAME may itself be ``module:function`` or ``file.py:function``."""
    head, sep, tail = option.rpartition(":")
    if sep and head:
        try:
            weight = float(tail)
        except ValueError:
            return option, 1.0
        if not math.isfinite(weight):
            raise typer.BadParameter(f"weight must be finite, got {tail!r}", param_hint="--reward")
        return head, weight
    return option, 1.0


def sum_of_rewards(options: list[str]) -> Reward:
    """The reward that ``--reward`` options name: the one reward, or a Rubric of their weighted sum."""
    parsed = [parse_reward_option(o) for o in options]
    try:
        rewards = [(get_reward(name), weight) for name, weight in parsed]
    except RewardNotFound as error:
        raise typer.BadParameter(str(error), param_hint="--reward") from error
    if len(rewards) == 1 and rewards[0][1] == 1.0:
        return rewards[0][0]
    try:
        return Rubric([Term(r, w) for r, w in rewards])
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--reward") from error


def resolve_reward(reward: list[str], config: Path | None, overrides: list[str] | None = None, default: str | None = None) -> Reward:
    """The reward a command was given: ``--config`` (a rubric, with ``--set`` overrides) or
    ``--reward`` options; `default` (a name) when the command has one and neither is given."""
    if config is not None and reward:
        raise typer.BadParameter("give either --config or --reward, not both", param_hint="--config")
    if overrides and config is None:
        raise typer.BadParameter("--set changes a config file: give --config too", param_hint="--set")
    if config is not None:
        try:
            return load_rubric(config, overrides)
        except RubricConfigError as error:
            raise typer.BadParameter(str(error), param_hint="--config") from error
    if reward or default is not None:
        return sum_of_rewards(reward or [default])  # type: ignore[list-item]
    raise typer.BadParameter("name a reward (--reward NAME) or a rubric (--config FILE)", param_hint="--reward")


def env_config(name: str | None, sets: list[str]) -> Any:
    """``--env`` and ``--env-set`` as the training config's `payoff.rl.config.EnvConfig` (one name
    per key on every path); None without ``--env``."""
    if name is None:
        if sets:
            raise typer.BadParameter("--env-set changes the environment: give --env too", param_hint="--env-set")
        return None
    from pydantic import ValidationError

    from payoff.compose.config import apply_overrides
    from payoff.envs import ENVS
    from payoff.rl.config import EnvConfig

    if name not in ENVS:
        raise typer.BadParameter(f"no environment named {name!r}; registered: {', '.join(sorted(ENVS))}", param_hint="--env")
    try:
        data = apply_overrides({"name": name}, list(sets))
    except ValueError as error:
        raise typer.BadParameter(str(error).replace("--set", "--env-set"), param_hint="--env-set") from None
    try:
        return EnvConfig.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise typer.BadParameter(problems, param_hint="--env-set") from None


def episode_parts(env: Any) -> tuple[Callable[[int], Any], Any, Reward]:
    """An EnvConfig's environment factory, its episode limits and the reward an episode is scored
    by unless the command names one: the environment's own (``reward``, else its default)."""
    from payoff.envs import ENVS
    from payoff.models.episodes import Limits, env_factory

    limits = Limits(env.max_turns, env.max_tool_calls, env.max_tokens, env.wall_s)
    own = env.reward or ENVS[env.name][1]
    if own is None:
        raise typer.BadParameter(f"the environment {env.name!r} has no reward of its own: give --reward", param_hint="--env")
    try:
        scorer = get_reward(own)
    except RewardNotFound as error:
        raise typer.BadParameter(str(error), param_hint="--env-set") from error
    return env_factory(env.name, dict(env.options), env.reward), limits, scorer


def gold_reward(spec: str) -> Reward:
    try:
        return get_reward(spec)
    except RewardNotFound as error:
        raise typer.BadParameter(str(error), param_hint="--gold") from error


def worker_count(workers: int | None) -> int:
    """``--workers`` as a number: its default is one per CPU, as the Engine's."""
    return (os.cpu_count() or 1) if workers is None else workers


def trainer_base(resume: Path | None, config: Path | None) -> dict | None:
    """The config a resumed run was started with (``RUN_DIR/config.json``), when no CONFIG is given:
    ``--set`` then changes that one."""
    if resume is not None and config is None and (resume / "config.json").exists():
        import json

        return json.loads((resume / "config.json").read_text())
    return None


def run_trainer(load: Callable[..., Any], train: Callable[..., dict[str, Any]], config: Path | None, overrides: list[str],
                resume: Path | None) -> None:
    """The body of `rm train`, `prm train` and `dpo train`: the config (a TOML file, or the resumed
    run's own) with ``--set`` on top, the run, then one JSON line of its summary. A bad config or
    data file exits 2 naming the problem, with no traceback."""
    from payoff.cli.report import emit, err
    from payoff.runs.config import ConfigError
    from payoff.tasks.preferences import PreferenceDataError

    try:
        summary = train(load(config, list(overrides), base=trainer_base(resume, config)), resume=resume, console=err)
    except (ConfigError, PreferenceDataError, OSError) as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    emit({k: v for k, v in summary.items() if k not in ("before", "after", "data")})
