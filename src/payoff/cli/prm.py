"""`payoff prm`: process reward models. ``label`` (Math-Shepherd / PAV automatic step labels),
``train``, ``bench`` (the procedural step benchmark with planted errors), ``champ`` (CHAMP's human
step labels)."""

from __future__ import annotations

from pathlib import Path

import typer

from payoff.cli.options import CONFIG, REPORT, RESUME, REWARD, SET, TIMEOUT_S, WORKERS, resolve_reward, run_trainer, worker_count
from payoff.cli.report import emit, err, markdown_table, write_report, wrote

app = typer.Typer(help="Process reward models: label, train, bench, champ.", no_args_is_help=True)


@app.command("train")
def train_command(
    config: Path | None = typer.Argument(None, help="TOML config (docs/prm.md); data.train = STEP DATA is required."),
    set_: list[str] = SET,
    resume: Path | None = RESUME,
) -> None:
    """Train a process reward model; prints held-out step accuracy and ProcessBench F1 before and after."""
    from payoff.prm.config import load_prm_config
    from payoff.prm.train import train_prm

    run_trainer(load_prm_config, train_prm, config, set_, resume)


@app.command("label")
def label_command(
    solutions: Path = typer.Argument(..., exists=True, dir_okay=False, help="Solutions: prompt, completions (steps) or steps, reference."),
    out: Path = typer.Option(..., "--out", "-o", help="Labels in TRL's PRM format (soft labels as floats); resumable."),
    reward: list[str] = REWARD,
    config: Path | None = CONFIG,
    set_: list[str] = SET,
    workers: int | None = WORKERS,
    timeout_s: float | None = TIMEOUT_S,
    policy: str = typer.Option("smollm2-135m-instruct", "--policy", help="The generator of the continuations."),
    rollouts: int = typer.Option(8, "--rollouts", min=1, help="Continuations per step prefix."),
    max_new_tokens: int = typer.Option(96, "--max-new-tokens", min=1, help="The most tokens per continuation."),
    temperature: float = typer.Option(1.0, help="Sampling temperature of the continuations."),
    seed: int = typer.Option(0, help="Seed of the continuations."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Label only the first N solutions."),
    report: Path | None = REPORT,
) -> None:
    """Math-Shepherd labels: N continuations from every step prefix, verified; soft, hard and PAV labels.

    The reward (default: math) verifies each continuation's final answer."""
    from rich.progress import Progress

    from payoff.prm.label import agreement_with_truth, math_shepherd
    from payoff.tasks.loader import table_rows

    verifier = resolve_reward(reward, config, set_, default="math")
    table = list(table_rows(solutions))[:limit]
    unreadable = [f"{row.where}: {row.problem}" for row in table if row.record is None]
    table = [row for row in table if row.record is not None]
    with Progress(console=err) as progress:
        bar = progress.add_task("label", total=len(table))
        labelled, result = math_shepherd([row.record for row in table], verifier, rollouts, policy, max_new_tokens, temperature, seed,
                                         out, out.with_suffix(".cache.jsonl"), workers=worker_count(workers), timeout_s=timeout_s,
                                         on_progress=lambda k: progress.advance(bar, k), where=[row.where for row in table])
    result["skipped"] = unreadable + result["skipped"]
    for problem in result["skipped"][:5]:
        err.print(f"[yellow]left out {problem}[/]")
    result.update(agreement_with_truth(labelled))
    err.print(f"{len(labelled)} solutions labelled -> {out}; {result['continuations']} continuations, {result['generated_tokens']} tokens")
    if report is not None:
        rows_shown = [(key, value) for key, value in result.items() if not isinstance(value, (dict, list))]
        wrote(write_report(report, result, markdown_table(f"payoff prm label {solutions.name}", rows_shown)))
    emit(result)


@app.command("bench")
def bench_command(
    out: Path = typer.Option(..., "--out", "-o", help="step problems with planted errors (TRL PRM format + ProcessBench label)"),
    count: int = typer.Option(200, min=1, help="Solutions to write."),
    seed: int = typer.Option(0, help="Seed of the problems and of the planted errors."),
    error_rate: float = typer.Option(0.5, "--error-rate", min=0.0, max=1.0, help="Share of the solutions with a planted error."),
) -> None:
    """Write the procedural step benchmark: multi-step arithmetic, an error planted at a known step or none."""
    from payoff.io import dump_line
    from payoff.prm.bench import step_problems

    rows = step_problems(count, seed, error_rate)
    with open(out, "w") as handle:
        for row in rows:
            handle.write(dump_line(row))
    planted = sum(r["label"] >= 0 for r in rows)
    err.print(f"{len(rows)} solutions ({planted} with a planted error) -> {out}")
    emit({"solutions": len(rows), "planted_errors": planted, "out": str(out)})


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
    emit({**counts, "out": str(out)})
