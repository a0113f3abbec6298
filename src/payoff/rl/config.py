"""`payoff rl train` configuration: one TOML file, validated by pydantic (errors name the field),
with ``--set section.key=value`` overrides. Every table and its defaults are documented in
docs/train.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from payoff.compose.config import apply_overrides as _apply_overrides
from payoff.runs.config import LogConfig as RunLogConfig
from payoff.runs.config import LoraConfig, RunConfig, Strict, describe, load_toml_config


class ModelConfig(Strict):
    name: str = "smollm2-135m-instruct"  # the embedded default, or a local transformers folder
    lora: LoraConfig | None = None  # None: full fine-tuning
    chat_template: bool = True
    system: str | None = None
    gradient_checkpointing: bool = False


class TaskConfig(Strict):
    kind: Literal["arithmetic", "reasoning_gym", "file"] = "arithmetic"
    train_size: int = Field(2000, gt=0)
    eval_size: int = Field(200, ge=0)
    train_seed: int = 1
    eval_seed: int = 2
    options: dict[str, Any] = {}  # passed to the task builder (level, template, name, path, ...)
    eval_options: dict[str, Any] | None = None  # defaults to `options`


class RolloutConfig(Strict):
    backend: Literal["hf", "vllm", "auto"] = "hf"
    group_size: int = Field(8, ge=1)
    prompts_per_step: int = Field(8, ge=1)
    max_new_tokens: int = Field(32, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0)
    stop: list[str] = []
    batch_size: int = Field(32, ge=1)  # generation batch; scoring of one batch overlaps the next


class AlgorithmConfig(Strict):
    @field_validator("advantage")
    @classmethod
    def _registered(cls, name: str) -> str:
        from payoff.rl.algorithms import ESTIMATORS

        if name not in ESTIMATORS:
            raise ValueError(f"unknown advantage estimator {name!r}; registered: {', '.join(sorted(ESTIMATORS))}")
        return name

    advantage: str = "grpo"  # a name in payoff.rl.algorithms.ESTIMATORS
    selection: Literal["none", "raft", "reinforce_rej"] = "none"
    raft_mode: Literal["best", "correct"] = "best"
    raft_threshold: float = 1.0
    dynamic_sampling: bool = False  # DAPO: refill the batch with groups of non-zero variance
    max_refills: int = Field(3, ge=0)
    eps_low: float = Field(0.2, ge=0)
    eps_high: float = Field(0.2, ge=0)  # DAPO clip-higher: 0.28
    loss_aggregation: Literal["token_mean", "seq_mean", "seq_sum"] = "token_mean"
    positive_weight: float = Field(1.0, ge=0)  # W-REINFORCE lambda (0.1); 1 = off
    kl_coef: float = Field(0.0, ge=0)
    kl_estimator: Literal["k1", "k2", "k3"] = "k3"
    kl_in_reward: bool = False  # REINFORCE++: subtract kl_coef * KL from the reward instead of the loss
    epochs: int = Field(1, ge=1)  # passes over each batch (PPO epochs); >1 makes the ratio and clip matter
    minibatches: int = Field(1, ge=1)  # optimiser steps per pass, on shuffled parts of the batch (PPO)
    gamma: float = Field(1.0, ge=0, le=1)  # GAE discount (advantage = "gae")
    lam: float = Field(0.95, ge=0, le=1)  # GAE lambda
    whiten_advantages: bool = True  # token-level advantages standardised over the batch (PPO)
    std_filter: bool = False  # RLPR: drop groups whose reward std is below an EMA threshold
    std_filter_momentum: float = Field(0.99, ge=0, lt=1)
    on_error: Literal["mask", "zero", "fail"] = "mask"
    bnpo_window: int = Field(8, ge=1)  # steps whose per-prompt success rates the BNPO Beta is fitted to
    reinforce_baseline: float = 0.0  # plain REINFORCE: A = r - b (0.5 on a 0/1 reward: the Minimalist +-1)


class CriticConfig(Strict):
    """PPO's value model (used when ``algorithm.advantage = "gae"``)."""

    model: str | None = None  # None: a copy of the policy's starting weights
    lr: float = Field(1e-5, gt=0)
    value_clip: float = Field(0.2, gt=0)  # PPO2 value clipping range
    max_grad_norm: float = 1.0


class OptimConfig(Strict):
    lr: float = Field(1e-5, gt=0)
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    max_grad_norm: float = 1.0
    warmup_steps: int = 0
    micro_batch: int = Field(16, ge=1)


class EvalConfig(Strict):
    every: int = 0  # held-out greedy accuracy every N steps (0: only before and after)
    pass_k: int = Field(0, ge=0)  # also pass@k with k samples per prompt (0: off)
    max_new_tokens: int | None = None
    threshold: float = 1.0  # a reward at or above this counts as correct


class EngineConfig(Strict):
    workers: int = Field(2, ge=0)
    timeout_s: float | None = Field(None, gt=0)  # per sample; None: the reward's own, else 30 s


class LogConfig(RunLogConfig):
    samples_every: int = 10
    samples_shown: int = 3
    monitor: bool = True  # the hacking monitor (payoff.audit.monitors) on every step's rollouts
    monitor_unit: Literal["tokens", "words", "chars"] = "tokens"  # how the monitor measures length


class EnvConfig(Strict):
    """Multi-turn RL: each sample is an episode in environment `name` (`payoff.envs.ENVS`)."""

    name: str
    options: dict[str, Any] = {}  # passed to the environment (tries, call_timeout_s, ...)
    reward: str | None = None  # the environment's own judge (feedback's verdicts); None: its default
    max_turns: int = Field(4, ge=1)  # assistant turns per episode
    max_tool_calls: int = Field(8, ge=0)
    max_tokens: int = Field(1024, ge=8)  # prompt + every turn, sampled and written, in tokens
    # Seconds per episode, generation included; None: no wall limit. A wall limit makes the run depend on how
    # busy the machine is (a step's episodes generate together), so a resumed or repeated run may differ.
    wall_s: float | None = Field(None, gt=0)
    workers: int = Field(8, ge=1)  # threads stepping the environments of a turn concurrently
    # Two cohorts of episodes take turns: one's tools run while the other generates (`payoff.models.episodes`).
    # Same samples under a seed; pays a half-width generation batch, so it pays off only for slow tools.
    overlap: bool = False


class TrainConfig(RunConfig):
    steps: int = Field(40, ge=0)
    time_budget_s: float | None = Field(None, gt=0)  # stop after the step that spends it (training time, evaluation excluded)
    checkpoint_every: int = Field(10, ge=0)
    reward: str | dict[str, Any] = "math"  # a reward name or spec, or a rubric table ([reward] like `payoff score --config`)
    accuracy_reward: str | None = None  # reward that defines "correct" for accuracy; default: the reward's "math" term if any
    model: ModelConfig = ModelConfig()
    task: TaskConfig = TaskConfig()
    rollout: RolloutConfig = RolloutConfig()
    algorithm: AlgorithmConfig = AlgorithmConfig()
    optim: OptimConfig = OptimConfig()
    critic: CriticConfig = CriticConfig()
    eval: EvalConfig = EvalConfig()
    engine: EngineConfig = EngineConfig()
    log: LogConfig = LogConfig()
    env: EnvConfig | None = None  # None: single-turn (one completion per prompt)
    # Named variants of this config, run one after another into run_dir/<name> and compared in
    # one plot (e.g. GRPO vs RAFT vs Reinforce-Rej). Each value is a table of overrides.
    variants: dict[str, dict[str, Any]] = {}

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.algorithm.selection == "raft" and self.algorithm.epochs > 1:
            raise ValueError("algorithm.epochs > 1 has no meaning for RAFT (an SFT step)")
        from payoff.rl.algorithms import TOKEN_LEVEL

        if self.algorithm.advantage in TOKEN_LEVEL and self.algorithm.selection == "raft":
            raise ValueError(f"algorithm.advantage = {self.algorithm.advantage!r} gives token advantages; RAFT is an SFT step")
        if self.env is not None:
            from payoff.envs import ENVS

            if self.env.name not in ENVS:
                raise ValueError(f"env.name: no environment named {self.env.name!r}; registered: {', '.join(sorted(ENVS))}")
            if self.rollout.backend == "vllm":
                raise ValueError("[env] episodes generate from token ids with the 'hf' backend; set rollout.backend = 'hf'")
        if self.algorithm.advantage == "gae" and self.algorithm.kl_coef > 0:
            # PPO's KL penalty is part of every token's reward, never a separate loss term.
            self.algorithm.kl_in_reward = True
        return self


class TrainConfigError(ValueError):
    pass


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``section.key=value`` assignments (`payoff.compose.config.apply_overrides`)."""
    try:
        return _apply_overrides(data, overrides)
    except ValueError as error:
        raise TrainConfigError(str(error)) from error


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, tables recursively."""
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def variant_configs(config: TrainConfig) -> dict[str, TrainConfig]:
    """One validated config per variant, each with its own run folder."""
    base = config.model_dump(exclude={"variants"})
    result = {}
    for name, changes in config.variants.items():
        data = merge(base, changes)
        data["run_dir"] = str(Path(config.run_dir) / name)
        try:
            result[name] = TrainConfig.model_validate(data)
        except ValidationError as error:
            raise TrainConfigError(f"variant {name!r}: {describe(error)}") from None
    return result


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    return load_toml_config(TrainConfig, path, overrides, error=TrainConfigError)

