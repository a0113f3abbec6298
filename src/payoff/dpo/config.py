"""`payoff dpo train` configuration, mirroring `payoff rm train` (``seed``, ``steps``, ``run_dir``,
``[model]``, ``[data]``, ``[optim]``, ``[log]``) with an ``[algorithm]`` table for the loss and an
optional ``[eval]`` table for held-out greedy accuracy on a task. Documented in docs/dpo.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from payoff.rl.config import LoraConfig, load_toml_config
from payoff.rm.config import RMDataConfig, RMLogConfig, RMOptimConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DPOModelConfig(_Strict):
    name: str = "smollm2-135m-instruct"
    lora: LoraConfig | None = None  # with LoRA the reference is the base with adapters off (no second copy)
    chat_template: bool = True
    max_length: int = Field(512, ge=8)  # prompt + answer tokens; longer pairs lose the prompt's start first
    gradient_checkpointing: bool = False


class DPOAlgorithmConfig(_Strict):
    loss: Literal["sigmoid", "ipo", "conservative", "robust", "simpo", "rpo"] = "sigmoid"
    beta: float = Field(0.1, gt=0)
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)  # eps of the conservative / robust losses
    gamma: float = 0.5  # SimPO's target margin
    alpha: float = Field(1.0, ge=0)  # RPO's weight on the chosen answer's NLL


class DPOEvalConfig(_Strict):
    task: Literal["none", "arithmetic", "file"] = "none"  # held-out greedy accuracy before and after
    size: int = Field(100, ge=1)
    seed: int = 2
    options: dict[str, Any] = {}
    reward: str = "math"
    max_new_tokens: int = Field(24, ge=1)


class DPOConfig(_Strict):
    seed: int = 0
    steps: int = Field(100, ge=0)
    run_dir: str = "out/dpo/run"
    checkpoint_every: int = Field(25, ge=0)
    keep_checkpoints: int = Field(2, ge=1)
    model: DPOModelConfig = DPOModelConfig()
    data: RMDataConfig
    algorithm: DPOAlgorithmConfig = DPOAlgorithmConfig()
    optim: RMOptimConfig = RMOptimConfig(lr=5e-6)
    eval: DPOEvalConfig = DPOEvalConfig()
    log: RMLogConfig = RMLogConfig()


class DPOConfigError(ValueError):
    pass


def load_dpo_config(path: str | Path | None, overrides: list[str] | None = None, base: dict[str, Any] | None = None) -> DPOConfig:
    return load_toml_config(DPOConfig, DPOConfigError, path, overrides, base)
