"""`payoff rl train [CONFIG] [--set key=value ...] [--resume RUN_DIR]`: RL against a payoff reward."""

from __future__ import annotations

from pathlib import Path

import typer

from payoff.cli.options import RESUME, SET, trainer_base
from payoff.cli.report import emit, err

app = typer.Typer(help="Reinforcement learning of a policy against a payoff reward: train.", no_args_is_help=True)


@app.command("train")
def train_command(
    config: Path | None = typer.Argument(None, help="TOML training config (docs/train.md); defaults apply without one."),
    set_: list[str] = SET,
    resume: Path | None = RESUME,
) -> None:
    """Train a policy with RL against a payoff reward; prints held-out accuracy before and after."""
    from payoff.rl.config import TrainConfig, TrainConfigError, apply_overrides, load_config
    from payoff.rl.loop import train

    base = trainer_base(resume, config)
    where = f"{resume}/config.json: " if base is not None else ""
    try:
        loaded = TrainConfig.model_validate(apply_overrides(base, list(set_))) if base is not None else load_config(config, list(set_))
    except (TrainConfigError, OSError, ValueError) as error:  # pydantic's ValidationError is a ValueError
        err.print(f"[red]{where}{error}[/]")
        raise typer.Exit(2) from None
    if loaded.variants and resume is None:
        from payoff.rl.compare import train_variants

        emit(train_variants(loaded, console=err))
        return
    summary = train(loaded, resume=resume, console=err)
    emit({k: v for k, v in summary.items() if k != "heldout_examples_after"})
