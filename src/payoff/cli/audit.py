"""`payoff audit`: attack a reward with the probe families; exit 1 on FAIL (a CI or launch gate)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from payoff.audit import audit
from payoff.compose import RubricConfigError, load_rubric
from payoff.io import read_records
from payoff.registry import RewardNotFound, get_reward

console = Console()
err_console = Console(stderr=True)


def audit_command(
    data: Path = typer.Option(..., "--data", "-d", exists=True, dir_okay=False, help="Tasks JSONL: prompt, reference, optional kind."),
    reward: str | None = typer.Option(None, "--reward", "-r", help="NAME, module:function or file.py:function."),
    config: Path | None = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="A TOML rubric."),
    report: Path | None = typer.Option(None, "--report", help="Directory for audit.json, audit.md and audit.html."),
    threshold: float = typer.Option(0.5, help="A probe is credited at >= threshold x the correct answer's score."),
    max_exploit: float = typer.Option(0.0, help="Largest tolerated exploit rate per family."),
    max_false_negative: float = typer.Option(0.01, help="Largest tolerated false-negative rate per family."),
    workers: int | None = typer.Option(None, "--workers", "-w", min=0),
    timeout: float | None = typer.Option(None, "--timeout-s", "--timeout", "-t", min=0.001, help="Seconds per sample (--timeout: the old name)."),
    set_: list[str] = typer.Option([], "--set", help="Override a --config value: reward.key=value (TOML value), repeatable."),
) -> None:
    """Attack a reward with known hacks; print exploit and false-negative rates per probe family."""
    if (reward is None) == (config is None):
        raise typer.BadParameter("give exactly one of --reward and --config", param_hint="--reward")
    if set_ and config is None:
        raise typer.BadParameter("--set changes a config file: give --config too", param_hint="--set")
    try:
        scorer = load_rubric(config, set_) if config else get_reward(reward)  # type: ignore[arg-type]
    except (RubricConfigError, RewardNotFound) as error:
        raise typer.BadParameter(str(error), param_hint="--config" if config else "--reward") from error
    lines, _ = read_records(data)
    tasks = [line.record for line in lines if line.record is not None]
    for line in lines:
        if line.problem:
            err_console.print(f"[yellow]skipped[/] {line.problem}")
    with Progress(TextColumn("[bold]auditing"), BarColumn(), MofNCompleteColumn(), console=err_console) as progress:
        task = progress.add_task("audit", total=None)
        result = audit(scorer, tasks, threshold=threshold, max_exploit=max_exploit, max_false_negative=max_false_negative,
                       workers=workers, timeout_s=timeout, on_progress=lambda n: progress.advance(task, n))
    table = Table(title=f"audit of {result.reward}: {result.verdict} ({result.usable_tasks}/{result.tasks} tasks usable)")
    for column in ("family", "exploit rate", "false negatives", "verdict"):
        table.add_column(column, justify="left" if column == "family" else "right")
    for row in result.table_rows():
        table.add_row(*row[:3], f"[red]{row[3]}[/]" if row[3] == "FAIL" else f"[green]{row[3]}[/]")
    console.print(table)
    for family in result.families:
        for example in family.examples[:1]:
            console.print(f"  [red]{family.family}[/] {example['type']}: {example['completion'][:100]!r} scored {example['score']}")
    for reason in result.reasons:
        console.print(f"[bold]{'FAIL' if result.verdict == 'FAIL' else ''}[/] {reason}")
    if result.unusable_references:
        console.print(f"{len(result.unusable_references)} task(s) unusable, e.g. {result.unusable_references[0]}")
    if result.duplicate_prompts:
        console.print(f"{result.duplicate_prompts} duplicate prompt(s) in the data")
    if report:
        report.mkdir(parents=True, exist_ok=True)
        (report / "audit.json").write_text(result.to_json())
        (report / "audit.md").write_text(result.to_markdown())
        (report / "audit.html").write_text(result.to_html())
        err_console.print(f"reports written to {report}/audit.{{json,md,html}}")
    raise typer.Exit(1 if result.verdict == "FAIL" else 0)


def monitor_command(
    rollouts: Path = typer.Argument(..., exists=True, dir_okay=False,
        help="JSONL rows with step, completion, reward[, components, heldout_accuracy]."),
    unit: str = typer.Option("tokens", help="Length unit: tokens (meta.num_tokens, else words), words or chars."),
    compare: list[str] = typer.Option([], help="Component pairs to compare, as LEFT~RIGHT (e.g. judge~math)."),
) -> None:
    """Run the hacking monitors over stored rollouts and print each step's warnings."""
    from payoff.audit.monitors import monitor_rollouts

    pairs = []
    for item in compare:
        left, sep, right = item.partition("~")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not LEFT~RIGHT", param_hint="--compare")
        pairs.append((left, right))
    reports = monitor_rollouts(rollouts, unit=unit, compare=pairs)
    table = Table(title=f"monitors over {rollouts.name}")
    for column in ("step", "reward", "length", "len~reward r", "repetition", "probe share", "warnings"):
        table.add_column(column, justify="left" if column == "warnings" else "right", overflow="fold")
    for report in reports:
        m = report.metrics
        table.add_row(str(report.step), f"{m['reward_mean']:.3f}", f"{m['length_mean']:.0f}", f"{m['length_reward_corr']:.2f}",
                      f"{m['repetition']:.0%}", f"{m['probe_share']:.0%}", "; ".join(w.split(":")[0] for w in report.warnings) or "-")
    console.print(table)
    for report in reports:
        for warning in report.warnings:
            console.print(f"step {report.step}: {warning}", soft_wrap=True)
