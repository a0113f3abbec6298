"""`payoff dpo` configuration: a run's keys and shared tables (`payoff.runs.config`: ``seed``,
``steps``, ``run_dir``, ``[data]``, ``[optim]``, ``[log]``) with a ``[model]`` table, an ``[algorithm]`` table for the loss and an
optional ``[eval]`` table for held-out greedy accuracy on a task. Documented in docs/dpo.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from payoff.runs.config import DatasetRunConfig, LoraConfig, OptimConfig, PairDataConfig, Strict, load_toml_config


class DPOModelConfig(Strict):
    name: str = "smollm2-135m-instruct"
    lora: LoraConfig | None = None  # with LoRA the reference is the base with adapters off (no second copy)
    chat_template: bool = True
    max_length: int = Field(512, ge=8)  # prompt + answer tokens; longer pairs lose the prompt's start first
    gradient_checkpointing: bool = False


class DPOAlgorithmConfig(Strict):
    loss: Literal["sigmoid", "ipo", "conservative", "robust", "simpo", "rpo"] = "sigmoid"
    beta: float = Field(0.1, gt=0)
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)  # eps of the conservative / robust losses
    gamma: float = 0.5  # SimPO's target margin
    alpha: float = Field(1.0, ge=0)  # RPO's weight on the chosen answer's NLL


class DPOEvalConfig(Strict):
    task: Literal["none", "arithmetic", "file"] = "none"  # held-out greedy accuracy before and after
    size: int = Field(100, ge=1)
    seed: int = 2
    options: dict[str, Any] = {}
    reward: str = "math"
    max_new_tokens: int = Field(24, ge=1)


class DPOOptimConfig(OptimConfig):
    # at most this many padded tokens per forward pass as pack() lays them out (2 rows per pair, each
    # the longest prompt + the longest answer; 0: no bound), longest pairs first: a step's
    # memory grows with them (payoff.runs.memory); 2048 kept the peak at 5-7 GB for SmolLM2-135M in
    # float32 where 16 rows of 256 reached 15 GB (docs/dpo.md)
    micro_tokens: int = Field(2048, ge=0)


class DPOConfig(DatasetRunConfig):
    run_dir: str = "out/dpo/run"
    model: DPOModelConfig = DPOModelConfig()
    data: PairDataConfig
    algorithm: DPOAlgorithmConfig = DPOAlgorithmConfig()
    optim: DPOOptimConfig = DPOOptimConfig(lr=5e-6)
    eval: DPOEvalConfig = DPOEvalConfig()


def load_dpo_config(path: str | Path | None, overrides: list[str] | None = None, base: dict[str, Any] | None = None) -> DPOConfig:
    return load_toml_config(DPOConfig, path, overrides, base)
