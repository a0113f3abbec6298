"""A run's configuration: one TOML file validated by pydantic (an error names the file and the
field), with ``--set section.key=value`` overrides, and the tables every trainer shares.

Each trainer's config (`payoff.rl.config`, `payoff.rm.config`, `payoff.prm.config`,
`payoff.dpo.config`) is a `RunConfig` with its own tables; `load_toml_config` loads any of them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from payoff.compose.config import apply_overrides


class Strict(BaseModel):
    """A config table: an unknown key is an error, never ignored."""

    model_config = ConfigDict(extra="forbid")


class LoraConfig(Strict):
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class OptimConfig(Strict):
    """The optimiser of the trainers that step over a fixed data set (`rm`, `prm`, `dpo`)."""

    lr: float = Field(1e-5, gt=0)
    schedule: Literal["linear", "constant"] = "linear"  # linear: warm up, then decay to 0 at the last step
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float = Field(1.0, gt=0)
    batch_size: int = Field(16, ge=1)  # examples per optimiser step, over all processes
    micro_batch: int = Field(8, ge=1)  # examples per forward pass per process (gradient accumulation)


class LogConfig(Strict):
    progress: bool = True  # the Rich progress bar
    tensorboard: bool = True  # TensorBoard scalars beside metrics.jsonl (when tensorboard is installed)
    plot: bool = True  # curves.png at the end


class DataConfig(Strict):
    """A training file and its held-out part."""

    train: str  # the training file: JSONL / JSON / Parquet / datasets folder
    eval: str | None = None  # None: hold out eval_fraction of train
    eval_fraction: float = Field(0.1, gt=0, lt=1)
    on_bad: Literal["skip", "fail"] = "skip"  # unusable rows: skip and report, or stop with the report
    train_size: int | None = Field(None, gt=0)  # use only the first N training examples
    eval_size: int | None = Field(None, gt=0)


class PairDataConfig(DataConfig):
    """A preference file (`payoff rm train`, `payoff dpo train`)."""

    fields: dict[str, str] = {}  # payoff name -> the file's field name (prompt, chosen, rejected, margin, tie)


class RunConfig(Strict):
    """What every run has; a trainer's config adds its tables (and may change the defaults)."""

    seed: int = 0
    steps: int = Field(100, ge=0)
    run_dir: str = "out/runs/run"
    checkpoint_every: int = Field(25, ge=0)  # 0: no checkpoints (the last step is always saved otherwise)
    keep_checkpoints: int = Field(2, ge=1)
    # bf16: forwards and backwards under bfloat16 autocast, float32 master weights (payoff.models.precision)
    precision: Literal["fp32", "bf16"] = "fp32"


class DatasetRunConfig(RunConfig):
    """A run that steps over a fixed data set (`rm`, `prm`, `dpo`): each optimiser step takes
    ``optim.batch_size`` examples in the seeded order of `payoff.runs.data`."""

    data: DataConfig
    optim: OptimConfig = OptimConfig()
    eval_batch_size: int = Field(16, ge=1)  # examples per forward pass when scoring the held-out examples
    log: LogConfig = LogConfig()


class ConfigError(ValueError):
    """A config file or ``--set`` override that cannot be used; the message names the file and the
    field."""


def load_toml_config(model: type[BaseModel], path: str | Path | None, overrides: list[str] | None = None,
                     base: dict[str, Any] | None = None, error: type[Exception] = ConfigError) -> Any:
    """``model`` validated from a TOML file (or ``base``, e.g. a run's saved config.json) with
    ``--set`` overrides; every problem raised as ``error`` naming the file and the field."""
    data: dict[str, Any] = dict(base or {})
    if path is not None:
        with open(path, "rb") as handle:
            try:
                data = tomllib.load(handle)
            except tomllib.TOMLDecodeError as problem:
                raise error(f"{path}: {problem}") from None
    try:
        return model.model_validate(apply_overrides(data, overrides or []))
    except ValidationError as problem:
        raise error(f"{path or 'config'}: {describe(problem)}") from None
    except ValueError as problem:
        raise error(str(problem)) from None


def describe(problem: ValidationError) -> str:
    """A validation error as ``field.path: message; ...``."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in problem.errors())
