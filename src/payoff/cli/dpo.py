"""`payoff dpo train [CONFIG]`: offline preference optimisation of a policy."""

from __future__ import annotations

from pathlib import Path

import typer

from payoff.cli.options import RESUME, SET, trainer_base
from payoff.cli.report import emit, err

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
    from payoff.runs.config import ConfigError
    from payoff.tasks.preferences import PreferenceDataError

    try:
        loaded = load_dpo_config(config, list(set_), base=trainer_base(resume, config))
        summary = train_dpo(loaded, resume=resume, console=err)
    except (ConfigError, PreferenceDataError, OSError) as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    emit({k: v for k, v in summary.items() if k not in ("before", "after", "data")})
