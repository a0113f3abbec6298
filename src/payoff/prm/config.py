"""`payoff prm train` configuration: a run's keys and shared tables (`payoff.runs.config`) with
``[model]``, ``[data]`` (its ``neutral`` rating) and ``[step]`` tables; documented in docs/prm.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from payoff.runs.config import DataConfig, DatasetRunConfig, LoraConfig, OptimConfig, Strict, load_toml_config


class PRMModelConfig(Strict):
    name: str = "smollm2-135m-instruct"
    lora: LoraConfig | None = None
    chat_template: bool = True
    max_length: int = Field(1024, ge=8)  # steps past it are cut off (counted in the summary)
    # "plain": on a CPU, payoff's attention (payoff.models.attention), as the RM trainer's default;
    # "default": transformers' own (sdpa); on a GPU the two are the same (docs/prm.md)
    attention: Literal["default", "plain"] = "plain"


class PRMDataConfig(DataConfig):
    """TRL's PRM format (prompt, completions, labels) or PRM800K-style ratings."""

    neutral: float = Field(1.0, ge=0, le=1)  # the label of a 0 (neutral) rating


class PRMStepConfig(Strict):
    separator: str = "\n\n"  # what follows every step; the score is read at a step's last token
    threshold: float = Field(0.5, gt=0, lt=1)  # P(right) below this flags a step wrong (ProcessBench F1)


class PRMOptimConfig(OptimConfig):
    # at most this many padded tokens per forward pass (0: no bound), longest solutions first: sorted
    # rows pad little, and a step's memory does not depend on which solutions it draws
    micro_tokens: int = Field(4096, ge=0)
    # each padded width rounded up to a multiple of this many tokens: fewer distinct shapes (docs/rm.md)
    pad_to_multiple_of: int = Field(16, ge=1)


class PRMConfig(DatasetRunConfig):
    run_dir: str = "out/prm/run"
    eval_batch_size: int = Field(8, ge=1)
    model: PRMModelConfig = PRMModelConfig()
    data: PRMDataConfig
    step: PRMStepConfig = PRMStepConfig()
    optim: PRMOptimConfig = PRMOptimConfig()


def load_prm_config(path: str | Path | None, overrides: list[str] | None = None, base: dict[str, Any] | None = None) -> PRMConfig:
    return load_toml_config(PRMConfig, path, overrides, base)
