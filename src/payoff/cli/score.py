"""`payoff score`: score a JSONL file with one reward or a weighted sum of rewards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from payoff.cli.options import CONFIG, REPORT, REWARD, SET, TIMEOUT_S, WORKERS, resolve_reward
from payoff.cli.report import emit, markdown_table, write_report, wrote
from payoff.core import Outcome
from payoff.engine import Engine, Summary, summarize
from payoff.io import check_writable, dump_line, read_jsonl

err_console = Console(stderr=True)


def score_command(
    input: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="JSONL: prompt, completion, reference, group, meta."),
    reward: list[str] = REWARD,
    config: Path | None = CONFIG,
    set_: list[str] = SET,
    workers: int | None = WORKERS,
    timeout_s: float | None = TIMEOUT_S,
    out: Path | None = typer.Option(None, "--out", "-o", help="Output JSONL (default: INPUT.scored.jsonl)."),
    memory_mb: int = typer.Option(4096, "--memory-mb", min=16, help="Memory (MB of address space) a worker may add to what it starts with."),
    cache: Path | None = typer.Option(None, "--cache", help="Directory of an on-disk outcome cache."),
    report: Path | None = REPORT,
) -> None:
    """Score every line of INPUT; write each line back with reward, status, components and info."""
    scorer = resolve_reward(reward, config, set_)
    out = out or input.with_suffix(".scored.jsonl")
    problem = check_writable(out)
    if problem:
        raise typer.BadParameter(problem, param_hint="--out")
    lines, blank = read_jsonl(input, keep_blank=True)
    good = [line for line in lines if line.sample is not None]

    with Progress(
        TextColumn("[bold]scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err_console, transient=False,
    ) as progress:
        task = progress.add_task("score", total=len(good))
        with Engine(scorer, workers=workers, timeout_s=timeout_s, memory_mb=memory_mb, cache=cache) as engine:
            outcomes = engine.score([line.sample for line in good], on_progress=lambda n: progress.advance(task, n))  # type: ignore[misc]

    by_line = {line.number: outcome for line, outcome in zip(good, outcomes)}
    all_outcomes = []
    out.parent.mkdir(parents=True, exist_ok=True)
    shown = 0
    with open(out, "w", encoding="utf-8") as handle:
        for line in lines:
            row: dict[str, Any]
            if line.sample is None:
                row = {"line": line.number, "raw": line.raw[:1000], "reward": None, "status": "error", "components": {},
                    "info": {"error": line.problem, "line": line.number}}
                if shown < 20:
                    err_console.print(f"[yellow]skipped[/] {escape(line.problem or '')}")
                shown += 1
                all_outcomes.append(Outcome.error(line.problem or "unreadable line"))
            else:
                outcome = by_line[line.number]
                row = {**line.record, **outcome.to_dict()}  # type: ignore[dict-item]
                row["info"] = {**row.get("info", {}), "line": line.number}
                all_outcomes.append(outcome)
            handle.write(dump_line(row))
    if shown > 20:
        err_console.print(f"[yellow]... and {shown - 20} more unreadable line(s)[/]")

    summary = summarize(all_outcomes)
    title = f"{scorer.name} on {input.name}"
    print_summary(summary, title=title)
    if blank:
        err_console.print(f"{blank} blank line(s) written back as errors")
    err_console.print(f"wrote {len(lines)} line(s) to {out}")
    result = {"reward": scorer.name, "input": str(input), "out": str(out), **summary.to_dict()}
    if report is not None:
        wrote(write_report(report, result, markdown_table(title, summary_rows(summary))))
    emit(result)


def summary_rows(summary: Summary) -> list[tuple[str, str]]:
    rows = [("samples", str(summary.n))]
    rows += [(f"  {status}", str(count)) for status, count in summary.statuses.items()]
    if summary.score_mean is not None:
        rows.append(("reward mean ± std", f"{summary.score_mean:.4f} ± {summary.score_std:.4f}"))
    rows += [(f"  {name}", f"{stats['mean']:.4f} ± {stats['std']:.4f} (n={int(stats['count'])})") for name, stats in summary.components.items()]
    rows += [(f"latency {key}", f"{value * 1000:.2f} ms") for key, value in summary.latency_s.items()]
    if summary.cached:
        rows.append(("from cache", str(summary.cached)))
    return rows


def print_summary(summary: Summary, title: str) -> None:
    table = Table(title=title)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for name, value in summary_rows(summary):
        table.add_row(name, value)
    err_console.print(table)
