"""`payoff eval SUITE [DATA]`: score a reward the way the field does (RewardBench v1/v2, RM-Bench,
RewardMATH-style, ProcessBench, plain pairs), on `bench` (payoff's procedural benchmark with known
truth) or as best-of-n over-optimisation curves (`overopt`)."""

from __future__ import annotations

from pathlib import Path

import typer

from payoff.cli.options import CONFIG, GOLD, REPORT, REWARD, SET, TIMEOUT_S, WORKERS, gold_reward, resolve_reward, worker_count
from payoff.cli.report import emit, err, wrote


def _fields(options: list[str]) -> dict[str, str]:
    fields = {}
    for option in options:
        ours, sep, theirs = option.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected ours=theirs, got {option!r}", param_hint="--field")
        fields[ours.strip()] = theirs.strip()
    return fields


def eval_command(
    suite: str = typer.Argument(..., help="pairs, rewardbench, rewardbench2, rmbench, rewardmath, processbench, bench or overopt."),
    data: Path | None = typer.Argument(None, exists=True, help="The suite's data (JSONL / JSON / Parquet / datasets folder); bench needs none."),
    reward: list[str] = REWARD,
    config: Path | None = CONFIG,
    set_: list[str] = SET,
    workers: int | None = WORKERS,
    timeout_s: float | None = TIMEOUT_S,
    field: list[str] = typer.Option([], "--field", help="Column map ours=theirs (prompt=question), repeatable."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Use only the first N rows."),
    step_threshold: float = typer.Option(0.5, "--step-threshold", help="processbench: a prefix scoring below this is wrong."),
    seed: int = typer.Option(0, help="bench: the seed of the procedural items."),
    items: int = typer.Option(40, help="bench: items per task family."),
    gold: str = GOLD,
    fail_under: float | None = typer.Option(None, "--fail-under", help="Exit 1 when the overall score is below this (a CI gate)."),
    report: Path | None = REPORT,
) -> None:
    """Score a reward the way the field does (benchmarks of reward models and verifiers).

    With --report, also DIR/report.html and the suite's plots."""
    from payoff.evaluate.report import print_table, write_report
    from payoff.evaluate.runner import SUITES, SuiteDataError, load_suite_rows, run_suite

    if suite not in (*SUITES, "bench", "overopt"):
        raise typer.BadParameter(f"unknown suite {suite!r}; suites: {', '.join(SUITES)}, bench, overopt", param_hint="SUITE")
    if suite != "bench" and data is None:
        raise typer.BadParameter(f"suite {suite} needs DATA" + (": candidates, one row per completion with a group" if suite == "overopt" else ""),
                                 param_hint="DATA")
    scorer = resolve_reward(reward, config, set_)
    workers = worker_count(workers)
    try:
        if suite == "bench":
            from payoff.evaluate.bench import run_bench

            result = run_bench(scorer, seed=seed, per_family=items, workers=workers, timeout_s=timeout_s)
        elif suite == "overopt":
            result = _overopt(data, scorer, gold, workers, timeout_s, limit)  # type: ignore[arg-type]
        else:
            rows = load_suite_rows(data, limit)  # type: ignore[arg-type]
            result = run_suite(suite, rows, scorer, fields=_fields(field), workers=workers, timeout_s=timeout_s, step_threshold=step_threshold)
    except (SuiteDataError, ValueError) as error:
        err.print(f"[red]{data}: {error}[/]")
        raise typer.Exit(2) from None
    title = f"payoff eval {suite}: {scorer.name}"
    print_table(result, err, title)
    if report is not None:
        written = write_report(result, report, title)
        if suite == "overopt":
            from payoff.evaluate.overoptimization import plot_curves

            written.append(plot_curves(result, report / "overoptimization.png"))
        wrote(written)
    overall = result.get("overall")
    emit({k: v for k, v in result.items() if k in ("suite", "reward", "overall", "subsets", "sections")})
    if fail_under is not None and (overall is None or overall < fail_under):
        err.print(f"[red]FAIL[/] overall {overall} is below --fail-under {fail_under}")
        raise typer.Exit(1)


def _overopt(data: Path, proxy, gold_spec: str, workers: int, timeout_s: float | None, limit: int | None) -> dict:
    from payoff.evaluate.overoptimization import curves
    from payoff.evaluate.runner import load_suite_rows, score_answers
    from payoff.io import answer_fields

    gold = gold_reward(gold_spec)
    rows = load_suite_rows(data, limit)
    samples = [{"prompt": r.get("prompt", ""), **answer_fields(r), "reference": r.get("reference"), "group": r.get("group")}
               for r in rows]
    proxy_scores = score_answers(samples, proxy, workers, timeout_s)
    gold_scores = score_answers(samples, gold, workers, timeout_s)
    points = [{"group": r.get("group", r.get("prompt")), "proxy": p.score if p.status == "ok" else None,
               "gold": g.score if g.status == "ok" else None} for r, p, g in zip(rows, proxy_scores, gold_scores)]
    result = curves(points)
    result.update({"suite": "overopt", "reward": proxy.name, "gold": gold_spec,
                   "overall": result["points"][-1]["gold"] if result["points"] else None,
                   "subsets": {f"n={p['n']}": p["gold"] for p in result["points"]}})
    return result
