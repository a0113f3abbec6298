"""`payoff score`: score a JSONL file with one reward or a weighted sum of rewards."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from payoff.compose import Rubric, RubricConfigError, Term, load_rubric
from payoff.core import Outcome, Reward
from payoff.engine import Engine, Summary, summarize
from payoff.io import check_writable, dump_line, read_jsonl
from payoff.registry import RewardNotFound, get_reward

console = Console()
err_console = Console(stderr=True)


def parse_reward_option(option: str) -> tuple[str, float]:
    """``NAME`` or ``NAME:WEIGHT``; NAME may itself be ``module:function`` or ``file.py:function``."""
    head, sep, tail = option.rpartition(":")
    if sep and head:
        try:
            weight = float(tail)
        except ValueError:
            return option, 1.0
        if not math.isfinite(weight):
            raise typer.BadParameter(f"weight must be finite, got {tail!r}", param_hint="--reward")
        return head, weight
    return option, 1.0


def build_reward(options: list[str]) -> Reward:
    parsed = [parse_reward_option(o) for o in options]
    try:
        rewards = [(get_reward(name), weight) for name, weight in parsed]
    except RewardNotFound as error:
        raise typer.BadParameter(str(error), param_hint="--reward") from error
    if len(rewards) == 1 and rewards[0][1] == 1.0:
        return rewards[0][0]
    try:
        return Rubric([Term(r, w) for r, w in rewards])
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--reward") from error


def resolve_reward(reward: list[str], config: Path | None, overrides: list[str] | None = None) -> Reward:
    """The reward a command was given: ``--config`` (a rubric, with ``--set`` overrides) or
    ``--reward`` options."""
    if config is not None and reward:
        raise typer.BadParameter("give either --config or --reward, not both", param_hint="--config")
    if overrides and config is None:
        raise typer.BadParameter("--set changes a config file: give --config too", param_hint="--set")
    if config is not None:
        try:
            return load_rubric(config, overrides)
        except RubricConfigError as error:
            raise typer.BadParameter(str(error), param_hint="--config") from error
    if reward:
        return build_reward(reward)
    raise typer.BadParameter("name a reward (--reward NAME) or a rubric (--config FILE)", param_hint="--reward")


def score_command(
    input: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="JSONL: prompt, completion, reference, group, meta."),
    reward: list[str] = typer.Option([], "--reward", "-r", help="NAME[:WEIGHT]; repeat to sum several rewards."),
    config: Path | None = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="A TOML file with a [reward] rubric."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output JSONL (default: INPUT.scored.jsonl)."),
    workers: int | None = typer.Option(None, "--workers", "-w", min=0, help="Worker processes (0 = in-process, no timeouts)."),
    timeout: float | None = typer.Option(None, "--timeout-s", "--timeout", "-t", min=0.001,
                                          help="Seconds per sample (per group for group rewards); --timeout: the old name."),
    memory_mb: int = typer.Option(4096, "--memory-mb", min=16, help="Memory (MB of address space) a worker may add to what it starts with."),
    cache: Path | None = typer.Option(None, "--cache", help="Directory of an on-disk outcome cache."),
    summary_json: Path | None = typer.Option(None, "--summary-json", help="Also write the summary as JSON."),
    set_: list[str] = typer.Option([], "--set", help="Override a --config value: reward.key=value (TOML value), repeatable."),
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
        with Engine(scorer, workers=workers, timeout_s=timeout, memory_mb=memory_mb, cache=cache) as engine:
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
    print_summary(summary, title=f"{scorer.name} on {input.name}")
    if blank:
        err_console.print(f"{blank} blank line(s) written back as errors")
    err_console.print(f"wrote {len(lines)} line(s) to {out}")
    if summary_json:
        summary_json.write_text(json.dumps(summary.to_dict(), indent=2))


def print_summary(summary: Summary, title: str) -> None:
    table = Table(title=title)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    table.add_row("samples", str(summary.n))
    for status, count in summary.statuses.items():
        table.add_row(f"  {status}", str(count))
    if summary.score_mean is not None:
        table.add_row("reward mean ± std", f"{summary.score_mean:.4f} ± {summary.score_std:.4f}")
    for name, stats in summary.components.items():
        table.add_row(f"  {name}", f"{stats['mean']:.4f} ± {stats['std']:.4f} (n={int(stats['count'])})")
    for key, value in summary.latency_s.items():
        table.add_row(f"latency {key}", f"{value * 1000:.2f} ms")
    if summary.cached:
        table.add_row("from cache", str(summary.cached))
    console.print(table)
