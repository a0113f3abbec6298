"""`payoff train CONFIG.toml [--set key=value ...] [--resume RUN_DIR]`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console


def train_command(
    config: Path | None = typer.Argument(None, help="TOML training config (see docs/train.md); defaults apply without one"),
    set_: list[str] = typer.Option([], "--set", help="override a config value: section.key=value (TOML value), repeatable"),
    resume: Path | None = typer.Option(None, "--resume", help="continue the run in this folder from its newest checkpoint"),
) -> None:
    """Train a policy with RL against a payoff reward; prints held-out accuracy before and after."""
    from payoff.rl.config import TrainConfigError, load_config
    from payoff.rl.loop import train

    console = Console(stderr=True)
    if resume is not None and config is None and (resume / "config.json").exists():
        config_data = json.loads((resume / "config.json").read_text())
        from payoff.rl.config import TrainConfig, apply_overrides

        try:
            loaded = TrainConfig.model_validate(apply_overrides(config_data, list(set_)))
        except Exception as error:
            console.print(f"[red]{resume}/config.json: {error}[/]")
            raise typer.Exit(2) from None
    else:
        try:
            loaded = load_config(config, list(set_))
        except (TrainConfigError, OSError) as error:
            console.print(f"[red]{error}[/]")
            raise typer.Exit(2) from None
    if loaded.variants and resume is None:
        from payoff.rl.compare import train_variants

        typer.echo(json.dumps(train_variants(loaded, console=console)))
        return
    summary = train(loaded, resume=resume, console=console)
    typer.echo(json.dumps({k: v for k, v in summary.items() if k != "heldout_examples_after"}))
