"""`payoff audit TASKS` (attack a reward with the probe families; exit 1 on FAIL, a CI or launch
gate) and `payoff monitor ROLLOUTS` (the hacking monitors over stored rollouts)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from payoff.cli.options import CONFIG, REPORT, REWARD, SET, TIMEOUT_S, WORKERS, resolve_reward
from payoff.cli.report import emit, err, write_report, wrote


def audit_command(
    tasks: Path = typer.Argument(..., exists=True, dir_okay=False, help="Tasks JSONL: prompt, reference, optional kind."),
    reward: list[str] = REWARD,
    config: Path | None = CONFIG,
    set_: list[str] = SET,
    workers: int | None = WORKERS,
    timeout_s: float | None = TIMEOUT_S,
    threshold: float = typer.Option(0.5, help="A probe is credited at >= threshold x the correct answer's score."),
    max_exploit: float = typer.Option(0.0, help="Largest tolerated exploit rate per family."),
    max_false_negative: float = typer.Option(0.01, help="Largest tolerated false-negative rate per family."),
    report: Path | None = REPORT,
) -> None:
    """Attack a reward with known hacks: exploit and false-negative rates per probe family; exit 1 on FAIL.

    With --report, also DIR/report.html and the hack matrix: DIR/matrix.json, matrix.md, matrix.png."""
    from payoff.audit import audit
    from payoff.audit.matrix import matrix_of
    from payoff.io import read_records

    scorer = resolve_reward(reward, config, set_)
    lines, _ = read_records(tasks)
    rows = [line.record for line in lines if line.record is not None]
    for line in lines:
        if line.problem:
            err.print(f"[yellow]skipped[/] {line.problem}")
    with Progress(TextColumn("[bold]auditing"), BarColumn(), MofNCompleteColumn(), console=err) as progress:
        task = progress.add_task("audit", total=None)
        result = audit(scorer, rows, threshold=threshold, max_exploit=max_exploit, max_false_negative=max_false_negative,
                       workers=workers, timeout_s=timeout_s, on_progress=lambda n: progress.advance(task, n))
    table = Table(title=f"audit of {result.reward}: {result.verdict} ({result.usable_tasks}/{result.tasks} tasks usable)")
    for column in ("family", "exploit rate", "false negatives", "verdict"):
        table.add_column(column, justify="left" if column == "family" else "right")
    for row in result.table_rows():
        table.add_row(*row[:3], f"[red]{row[3]}[/]" if row[3] == "FAIL" else f"[green]{row[3]}[/]")
    err.print(table)
    for family in result.families:
        for example in family.examples[:1]:
            err.print(f"  [red]{family.family}[/] {example['type']}: {example['completion'][:100]!r} scored {example['score']}")
    for reason in result.reasons:
        err.print(f"[bold]{'FAIL' if result.verdict == 'FAIL' else ''}[/] {reason}")
    if result.unusable_references:
        err.print(f"{len(result.unusable_references)} task(s) unusable, e.g. {result.unusable_references[0]}")
    if result.duplicate_prompts:
        err.print(f"{result.duplicate_prompts} duplicate prompt(s) in the data")
    if report is not None:
        written = write_report(report, result.to_dict(), result.to_markdown())
        (report / "report.html").write_text(result.to_html())
        wrote([*written, report / "report.html", *matrix_of(result, rows).write(report)])
    emit({"reward": result.reward, "verdict": result.verdict, "tasks": result.tasks, "usable_tasks": result.usable_tasks,
          "families": {f.family: {"exploit_rate": f.exploit_rate, "false_negative_rate": f.false_negative_rate} for f in result.families}})
    raise typer.Exit(1 if result.verdict == "FAIL" else 0)


def monitor_command(
    rollouts: Path = typer.Argument(..., exists=True, dir_okay=False,
        help="JSONL rows with step, completion (or messages), reward[, components, info, heldout_accuracy]."),
    unit: str = typer.Option("tokens", help="Length unit: tokens (meta.num_tokens, else words), words or chars."),
    compare: list[str] = typer.Option([], help="Component pairs to compare, as LEFT~RIGHT (e.g. judge~math)."),
    fail_on_warning: bool = typer.Option(False, "--fail-on-warning", help="Exit 1 when any step has a warning."),
    report: Path | None = REPORT,
) -> None:
    """Run the hacking monitors over stored rollouts: each step's metrics and warnings."""
    from payoff.audit.monitors import monitor_rollouts

    pairs = []
    for item in compare:
        left, sep, right = item.partition("~")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not LEFT~RIGHT", param_hint="--compare")
        pairs.append((left, right))
    reports = monitor_rollouts(rollouts, unit=unit, compare=pairs)
    columns = ("step", "reward", "length", "len~reward r", "repetition", "probe share", "warnings")
    rows = []
    episodes = any("turns_mean" in step.metrics for step in reports)
    if episodes:  # rollouts that carry messages: what the episodes did
        columns = (*columns[:-1], "turns", "tool calls", "tool errors", "turn reward", columns[-1])
    for step in reports:
        m = step.metrics
        row = [str(step.step), f"{m['reward_mean']:.3f}", f"{m['length_mean']:.0f}", f"{m['length_reward_corr']:.2f}",
               f"{m['repetition']:.0%}", f"{m['probe_share']:.0%}"]
        if episodes:
            turn_reward = m.get("turn_reward_mean")
            row += [f"{m.get('turns_mean', 0):.1f}", f"{m.get('tool_calls_mean', 0):.1f}", f"{m.get('tool_error_rate', 0):.0%}",
                    "-" if turn_reward is None else f"{turn_reward:.3f}"]
        rows.append((*row, "; ".join(w.split(":")[0] for w in step.warnings) or "-"))
    table = Table(title=f"monitors over {rollouts.name}")
    for column in columns:
        table.add_column(column, justify="left" if column == "warnings" else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    err.print(table)
    warnings = [f"step {step.step}: {warning}" for step in reports for warning in step.warnings]
    for warning in warnings:
        err.print(warning, soft_wrap=True)
    result = {"rollouts": str(rollouts), "unit": unit, "warnings": warnings,
              "steps": [{"step": step.step, "metrics": step.metrics, "warnings": step.warnings} for step in reports]}
    if report is not None:
        markdown = "\n".join([f"# payoff monitor {rollouts.name}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
                              *("| " + " | ".join(row) + " |" for row in rows), "", *(f"- {w}" for w in warnings)])
        wrote(write_report(report, result, markdown))
    emit({"steps": len(reports), "warnings": warnings})
    raise typer.Exit(1 if fail_on_warning and warnings else 0)
