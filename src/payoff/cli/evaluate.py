"""`payoff eval SUITE` (RewardBench v1/v2, RM-Bench, RewardMATH-style, ProcessBench, plain pairs,
and `bench`, payoff's procedural benchmark with known truth) and `payoff rescore`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

err = Console(stderr=True)


def _fields(options: list[str]) -> dict[str, str]:
    fields = {}
    for option in options:
        ours, sep, theirs = option.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected ours=theirs, got {option!r}", param_hint="--field")
        fields[ours.strip()] = theirs.strip()
    return fields


def eval_command(
    suite: str = typer.Argument(..., help="pairs, rewardbench, rewardbench2, rmbench, rewardmath, processbench, bench or overopt"),
    data: Path | None = typer.Option(None, "--data", "-d", exists=True, help="the suite's data (JSONL / JSON / Parquet / datasets folder)"),
    reward: list[str] = typer.Option([], "--reward", "-r", help="NAME[:WEIGHT], module:function or file.py:function; repeatable"),
    config: Path | None = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="a rubric TOML"),
    set_: list[str] = typer.Option([], "--set", help="override a --config value"),
    report: Path | None = typer.Option(None, "--report", help="folder for report.json, report.md, report.html and plots"),
    field: list[str] = typer.Option([], "--field", help="column map ours=theirs (prompt=question), repeatable"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="use only the first N rows"),
    workers: int = typer.Option(2, "--workers", "-w", min=0),
    timeout_s: float | None = typer.Option(None, "--timeout-s", min=0.001, help="seconds per answer (per batch for batched rewards)"),
    step_threshold: float = typer.Option(0.5, "--step-threshold", help="processbench: a prefix scoring below this is wrong"),
    seed: int = typer.Option(0, help="bench: the seed of the procedural items"),
    items: int = typer.Option(40, help="bench: items per task family"),
    gold: str = typer.Option("math", help="overopt: the gold reward that decides correctness"),
) -> None:
    """Score a reward the way the field does; prints a table, writes DIR/report.json."""
    from payoff.cli.score import resolve_reward
    from payoff.evaluate.report import print_table, write_report
    from payoff.evaluate.runner import SUITES, SuiteDataError, load_suite_rows, run_suite

    scorer = resolve_reward(reward, config, list(set_))
    if suite == "bench":
        from payoff.evaluate.bench import run_bench

        result = run_bench(scorer, seed=seed, per_family=items, workers=workers, timeout_s=timeout_s)
    elif suite == "overopt":
        if data is None:
            raise typer.BadParameter("overopt needs --data: candidates, one row per completion with a group", param_hint="--data")
        result = _overopt(data, scorer, gold, workers, timeout_s, limit)
        if report is not None:
            from payoff.evaluate.overoptimization import plot_curves

            report.mkdir(parents=True, exist_ok=True)
            plot_curves(result, report / "overoptimization.png")
    elif suite in SUITES:
        if data is None:
            raise typer.BadParameter(f"suite {suite} needs --data", param_hint="--data")
        try:
            rows = load_suite_rows(data, limit)
            result = run_suite(suite, rows, scorer, fields=_fields(field), workers=workers, timeout_s=timeout_s,
                               step_threshold=step_threshold)
        except (SuiteDataError, ValueError) as error:
            err.print(f"[red]{data}: {error}[/]")
            raise typer.Exit(2) from None
    else:
        raise typer.BadParameter(f"unknown suite {suite!r}; suites: {', '.join(SUITES)}, bench", param_hint="SUITE")
    title = f"payoff eval {suite}: {scorer.name}"
    print_table(result, err, title)
    if report is not None:
        for path in write_report(result, report, title):
            err.print(f"wrote {path}")
    typer.echo(json.dumps({k: v for k, v in result.items() if not k.startswith("_") and k in ("overall", "subsets", "sections")}))


def rescore_command(
    rollouts: Path = typer.Argument(..., exists=True, dir_okay=False, help="scored rollouts (payoff train samples.jsonl, payoff score output)"),
    reward: list[str] = typer.Option([], "--reward", "-r", help="a reward to compare (NAME, file.py:function, or rubric.toml); repeat"),
    report: Path | None = typer.Option(None, "--report", help="folder for report.json and report.md"),
    threshold: float = typer.Option(0.5, help="a score at or above this passes (for Cohen's kappa and the confusion table)"),
    workers: int = typer.Option(2, "--workers", "-w", min=0),
    examples: int = typer.Option(5, help="disagreements shown per pair of rewards"),
) -> None:
    """Rescore stored rollouts with reward variants: agreement, confusion, disagreements, and how
    the training signal would change."""
    from payoff.evaluate.rescore import rescore, write_rescore

    result = rescore(rollouts, reward, threshold=threshold, workers=workers, examples=examples)
    from rich.table import Table

    table = Table(title=f"payoff rescore {rollouts.name}")
    for column in ("A", "B", "kappa", "spearman", "agree", "sign flips"):
        table.add_column(column)
    for row in result["pairs"]:
        table.add_row(row["a"], row["b"], f"{row['kappa']:.3f}" if row["kappa"] is not None else "-",
                      f"{row['spearman']:.3f}" if row["spearman"] is not None else "-", f"{row['agreement']:.3f}",
                      f"{row['advantage_sign_changes']:.3f}" if row["advantage_sign_changes"] is not None else "-")
    err.print(table)
    if report is not None:
        for path in write_rescore(result, report):
            err.print(f"wrote {path}")
    typer.echo(json.dumps({"pairs": [{k: v for k, v in p.items() if k != "disagreements"} for p in result["pairs"]]}))


def _overopt(data: Path, proxy, gold_spec: str, workers: int, timeout_s: float | None, limit: int | None) -> dict:
    from payoff.evaluate.overoptimization import curves
    from payoff.evaluate.runner import load_suite_rows, score_answers
    from payoff.registry import get_reward

    rows = load_suite_rows(data, limit)
    samples = [{"prompt": r.get("prompt", ""), "completion": r.get("completion", ""), "reference": r.get("reference"), "group": r.get("group")}
               for r in rows]
    proxy_scores = score_answers(samples, proxy, workers, timeout_s)
    gold_scores = score_answers(samples, get_reward(gold_spec), workers, timeout_s)
    points = [{"group": r.get("group", r.get("prompt")), "proxy": p.score if p.status == "ok" else None,
               "gold": g.score if g.status == "ok" else None} for r, p, g in zip(rows, proxy_scores, gold_scores)]
    result = curves(points)
    result.update({"suite": "overopt", "reward": proxy.name, "gold": gold_spec,
                   "overall": result["points"][-1]["gold"] if result["points"] else None,
                   "subsets": {f"n={p['n']}": p["gold"] for p in result["points"]}})
    return result
