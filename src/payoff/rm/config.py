"""`payoff rm train` configuration: one TOML file mirroring `payoff rl train`'s (``seed``,
``steps``, ``run_dir``, ``[model]``, ``[optim]``, ``[log]``) with ``[data]`` and ``[loss]``
tables, validated by pydantic, with ``--set section.key=value`` overrides. Every key and default
is documented in docs/rm.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from payoff.rl.config import LoraConfig, load_toml_config


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RMModelConfig(_Strict):
    name: str = "smollm2-135m-instruct"  # the embedded default, or a local transformers folder
    lora: LoraConfig | None = None  # None: full fine-tuning of the trunk; the head is always trained
    heads: int = Field(1, ge=1)  # >1: an ensemble of heads on one trunk (mean / worst case / mean - lambda*std)
    chat_template: bool = True  # render (prompt, answer) through the tokenizer's chat template
    max_length: int = Field(512, ge=8)
    truncation: Literal["prompt_left", "right"] = "prompt_left"  # long pairs are cut (and counted), never dropped
    dtype: Literal["float32", "bfloat16"] = "float32"
    gradient_checkpointing: bool = False


class RMDataConfig(_Strict):
    train: str  # a preference file: JSONL / JSON / Parquet / datasets folder
    eval: str | None = None  # None: hold out eval_fraction of train
    eval_fraction: float = Field(0.1, gt=0, lt=1)
    fields: dict[str, str] = {}  # payoff name -> the file's field name (prompt, chosen, rejected, margin, tie)
    on_bad: Literal["skip", "fail"] = "skip"  # unreadable / empty / identical pairs: skip and report, or stop
    train_size: int | None = Field(None, gt=0)  # use only the first N training pairs
    eval_size: int | None = Field(None, gt=0)


class RMLossConfig(_Strict):
    use_margin: bool = True  # subtract the pair's margin (when the data has one) inside the sigmoid
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)
    center_coef: float = Field(0.0, ge=0)  # lambda of lambda * mean((r_c + r_r)^2); TRL's suggestion is 0.01
    bootstrap: float = Field(0.8, gt=0, le=1)  # with heads > 1: the chance each head trains on each pair


class RMOptimConfig(_Strict):
    lr: float = Field(1e-5, gt=0)
    schedule: Literal["linear", "constant"] = "linear"  # linear: warm up, then decay to 0 at the last step
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float = Field(1.0, gt=0)
    batch_size: int = Field(16, ge=1)  # pairs per optimiser step, over all processes
    micro_batch: int = Field(8, ge=1)  # pairs per forward pass per process (gradient accumulation)


class RMLogConfig(_Strict):
    progress: bool = True
    tensorboard: bool = True
    plot: bool = True


class RMTrainConfig(_Strict):
    seed: int = 0
    steps: int = Field(100, ge=0)
    run_dir: str = "out/rm/run"
    checkpoint_every: int = Field(25, ge=0)
    keep_checkpoints: int = Field(2, ge=1)
    eval_batch_size: int = Field(16, ge=1)
    model: RMModelConfig = RMModelConfig()
    data: RMDataConfig
    loss: RMLossConfig = RMLossConfig()
    optim: RMOptimConfig = RMOptimConfig()
    log: RMLogConfig = RMLogConfig()

    @model_validator(mode="after")
    def _check(self) -> RMTrainConfig:
        if self.optim.batch_size % self.optim.micro_batch and self.optim.micro_batch < self.optim.batch_size:
            raise ValueError("optim.batch_size must be a multiple of optim.micro_batch")
        return self


class RMConfigError(ValueError):
    pass


def load_rm_config(path: str | Path | None, overrides: list[str] | None = None, base: dict[str, Any] | None = None) -> RMTrainConfig:
    return load_toml_config(RMTrainConfig, RMConfigError, path, overrides, base)
