"""`payoff prm train` configuration, mirroring `payoff rm train`; documented in docs/prm.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from payoff.rm.config import RMLogConfig, RMOptimConfig
from payoff.runs.config import LoraConfig, load_toml_config


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PRMModelConfig(_Strict):
    name: str = "smollm2-135m-instruct"
    lora: LoraConfig | None = None
    chat_template: bool = True
    max_length: int = Field(1024, ge=8)  # steps past it are cut off (counted in the summary)


class PRMDataConfig(_Strict):
    train: str  # TRL's PRM format (prompt, completions, labels) or PRM800K-style ratings
    eval: str | None = None
    eval_fraction: float = Field(0.1, gt=0, lt=1)
    neutral: float = Field(1.0, ge=0, le=1)  # the label of a 0 (neutral) rating
    on_bad: str = "skip"
    train_size: int | None = Field(None, gt=0)
    eval_size: int | None = Field(None, gt=0)


class PRMStepConfig(_Strict):
    separator: str = "\n\n"  # what follows every step; the score is read at a step's last token
    threshold: float = Field(0.5, gt=0, lt=1)  # P(right) below this flags a step wrong (ProcessBench F1)


class PRMConfig(_Strict):
    seed: int = 0
    steps: int = Field(100, ge=0)
    run_dir: str = "out/prm/run"
    checkpoint_every: int = Field(25, ge=0)
    keep_checkpoints: int = Field(2, ge=1)
    eval_batch_size: int = Field(8, ge=1)
    model: PRMModelConfig = PRMModelConfig()
    data: PRMDataConfig
    step: PRMStepConfig = PRMStepConfig()
    optim: RMOptimConfig = RMOptimConfig()
    log: RMLogConfig = RMLogConfig()


class PRMConfigError(ValueError):
    pass


def load_prm_config(path: str | Path | None, overrides: list[str] | None = None, base: dict[str, Any] | None = None) -> PRMConfig:
    return load_toml_config(PRMConfig, PRMConfigError, path, overrides, base)
