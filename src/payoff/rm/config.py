"""`payoff rm train` configuration: a run's keys and shared tables (`payoff.runs.config`:
``seed``, ``steps``, ``run_dir``, checkpoints, ``[data]``, ``[optim]``, ``[log]``) with ``[model]``
and ``[loss]`` tables, validated by pydantic, with ``--set section.key=value`` overrides. Every key and default
is documented in docs/rm.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from payoff.runs.config import DatasetRunConfig, LoraConfig, OptimConfig, PairDataConfig, Strict, load_toml_config


class RMModelConfig(Strict):
    name: str = "smollm2-135m-instruct"  # the embedded default, or a local transformers folder
    lora: LoraConfig | None = None  # None: full fine-tuning of the trunk; the head is always trained
    heads: int = Field(1, ge=1)  # >1: an ensemble of heads on one trunk (mean / worst case / mean - lambda*std)
    chat_template: bool = True  # render (prompt, answer) through the tokenizer's chat template
    max_length: int = Field(512, ge=8)
    truncation: Literal["prompt_left", "right"] = "prompt_left"  # long pairs are cut (and counted), never dropped
    dtype: Literal["float32", "bfloat16"] = "float32"
    gradient_checkpointing: bool = False
    # "plain": on a CPU, plain attention where a layer's score matrix is small (payoff.models.attention):
    # 0.83x the time a step and 0.97x the peak memory of "default", transformers' choice (sdpa), on
    # an Intel Xeon with AMX (docs/rm.md); on a GPU the two are the same
    attention: Literal["default", "plain"] = "plain"


class RMLossConfig(Strict):
    use_margin: bool = True  # subtract the pair's margin (when the data has one) inside the sigmoid
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)
    center_coef: float = Field(0.0, ge=0)  # lambda of lambda * mean((r_c + r_r)^2); TRL's suggestion is 0.01
    bootstrap: float = Field(0.8, gt=0, le=1)  # with heads > 1: the chance each head trains on each pair


class RMOptimConfig(OptimConfig):
    # at most this many padded tokens per forward pass (0: no bound): a pair's shared prefix once and
    # each answer after it (payoff.rm.pairwise), longest pairs first, so a step's memory does not
    # depend on which pairs it draws (payoff.runs.memory). 1024, not more: a run pays to fault in
    # its peak, the largest forward's activations (about 7 s per GB on a VM; docs/rm.md)
    micro_tokens: int = Field(1024, ge=0)
    # each padded width rounded up to a multiple of this many tokens: fewer distinct shapes, so
    # fewer kernels built for them and a heap that does not grow with each new one (docs/rm.md)
    pad_to_multiple_of: int = Field(16, ge=1)


class RMTrainConfig(DatasetRunConfig):
    run_dir: str = "out/rm/run"
    model: RMModelConfig = RMModelConfig()
    data: PairDataConfig
    loss: RMLossConfig = RMLossConfig()
    optim: RMOptimConfig = RMOptimConfig()

    @model_validator(mode="after")
    def _check(self) -> RMTrainConfig:
        if self.optim.batch_size % self.optim.micro_batch and self.optim.micro_batch < self.optim.batch_size:
            raise ValueError("optim.batch_size must be a multiple of optim.micro_batch")
        return self


def load_rm_config(path: str | Path | None, overrides: list[str] | None = None, base: dict[str, Any] | None = None) -> RMTrainConfig:
    return load_toml_config(RMTrainConfig, path, overrides, base)
