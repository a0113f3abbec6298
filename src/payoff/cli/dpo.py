"""`payoff dpo train [CONFIG]`: offline preference optimisation of a policy."""

from __future__ import annotations

from pathlib import Path

import typer

from payoff.cli.options import RESUME, SET, run_trainer

app = typer.Typer(help="Offline preference optimisation (DPO and its variants): train.", no_args_is_help=True)


@app.command("train")
def train_command(
    config: Path | None = typer.Argument(None, help="TOML config (docs/dpo.md); data.train = PAIRS is required."),
    set_: list[str] = SET,
    resume: Path | None = RESUME,
) -> None:
    """Train a policy on preference pairs (DPO, IPO, conservative/robust DPO, SimPO, RPO)."""
    from payoff.dpo.config import load_dpo_config
    from payoff.dpo.train import train_dpo

    run_trainer(load_dpo_config, train_dpo, config, set_, resume)
