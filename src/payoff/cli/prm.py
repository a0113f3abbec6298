"""`payoff prm`: process reward models. ``label`` (Math-Shepherd / PAV automatic step labels),
``train``, ``bench`` (the procedural step benchmark with planted errors)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(help="Process reward models: label, train, bench.", no_args_is_help=True)
err = Console(stderr=True)


@app.command("train")
def train_command(
    config: Path | None = typer.Argument(None, help="TOML config (docs/prm.md); [data] train = STEP DATA is required"),
    set_: list[str] = typer.Option([], "--set", help="override a config value, repeatable"),
    resume: Path | None = typer.Option(None, "--resume", help="continue the run in this folder from its newest checkpoint"),
) -> None:
    """Train a process reward model; prints held-out step accuracy and ProcessBench F1 before and after."""
    from payoff.prm.config import load_prm_config
    from payoff.prm.train import train_prm
    from payoff.runs.config import ConfigError
    from payoff.tasks.preferences import PreferenceDataError

    base = json.loads((resume / "config.json").read_text()) if resume is not None and config is None and (resume / "config.json").exists() else None
    try:
        summary = train_prm(load_prm_config(config, list(set_), base=base), resume=resume, console=err)
    except (ConfigError, PreferenceDataError, OSError) as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    typer.echo(json.dumps({k: v for k, v in summary.items() if k not in ("before", "after", "data")}))


@app.command("label")
def label_command(
    data: Path = typer.Argument(..., exists=True, dir_okay=False, help="solutions: prompt, completions or steps (lists) or completion (text)"),
    out: Path = typer.Option(..., "--out", "-o", help="labels in TRL's PRM format (soft labels as floats); resumable"),
    reward: str = typer.Option("math", "--reward", help="the verifier of the continuations"),
    policy: str = typer.Option("smollm2-135m-instruct", "--policy", help="the generator of the continuations"),
    rollouts: int = typer.Option(8, "--rollouts", min=1, help="continuations per step prefix"),
    max_new_tokens: int = typer.Option(96, "--max-new-tokens", min=1),
    temperature: float = typer.Option(1.0),
    seed: int = typer.Option(0),
    limit: int | None = typer.Option(None, "--limit", min=1),
    workers: int = typer.Option(2, "--workers", "-w", min=0),
) -> None:
    """Math-Shepherd labels: N continuations from every step prefix, verified; soft, hard and PAV progress labels."""
    from rich.progress import Progress

    from payoff.prm.label import agreement_with_truth, math_shepherd
    from payoff.registry import get_reward
    from payoff.tasks.loader import table_rows

    table = list(table_rows(data))[:limit]
    unreadable = [f"{row.where}: {row.problem}" for row in table if row.record is None]
    table = [row for row in table if row.record is not None]
    with Progress(console=err) as progress:
        bar = progress.add_task("label", total=len(table))
        labelled, report = math_shepherd([row.record for row in table], get_reward(reward), rollouts, policy, max_new_tokens, temperature,
                                         seed, out, out.with_suffix(".cache.jsonl"), workers=workers,
                                         on_progress=lambda k: progress.advance(bar, k), where=[row.where for row in table])
    report["skipped"] = unreadable + report["skipped"]
    for problem in report["skipped"][:5]:
        err.print(f"[yellow]left out {problem}[/]")
    report.update(agreement_with_truth(labelled))
    err.print(f"{len(labelled)} solutions labelled -> {out}; {report['continuations']} continuations, {report['generated_tokens']} tokens")
    typer.echo(json.dumps(report))


@app.command("bench")
def bench_command(
    out: Path = typer.Option(..., "--out", "-o", help="step problems with planted errors (TRL PRM format + ProcessBench label)"),
    count: int = typer.Option(200, min=1),
    seed: int = typer.Option(0),
    error_rate: float = typer.Option(0.5, "--error-rate", min=0.0, max=1.0),
) -> None:
    """Write the procedural step benchmark: multi-step arithmetic, an error planted at a known step or none."""
    from payoff.io import dump_line
    from payoff.prm.bench import step_problems

    rows = step_problems(count, seed, error_rate)
    with open(out, "w") as handle:
        for row in rows:
            handle.write(dump_line(row))
    err.print(f"{len(rows)} solutions ({sum(r['label'] >= 0 for r in rows)} with a planted error) -> {out}")


@app.command("champ")
def champ_command(
    out: Path = typer.Option(..., "--out", "-o", help="CHAMP's human first-wrong-step labels as ProcessBench rows"),
    steps: str = typer.Option("double_newline", help="the step splitter: double_newline, step_markers or a separator"),
) -> None:
    """Write CHAMP's 540 human first-wrong-step annotations (champ-dataset==1.0.0) as ProcessBench rows."""
    from payoff.io import dump_line
    from payoff.prm.champ import champ_rows

    rows, counts = champ_rows(steps)
    with open(out, "w") as handle:
        for row in rows:
            handle.write(dump_line(row))
    err.print(f"wrote {counts['rows']} rows to {out} ({counts['correct']} without a mistake; skipped: "
              f"{counts['no_steps']} without steps, {counts['unplaceable']} whose span could not be placed)")
