"""`payoff select CANDIDATES.jsonl --method M [--reward SPEC] [--gold SPEC] [--n 1,2,4] [--report DIR]`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

err = Console(stderr=True)
ALL = ("bon", "majority", "weighted_vote", "self_certainty", "borda", "pass@k", "maj@k")
GENERATIVE = ("beam", "dvts", "particle")


def select_command(
    candidates: Path = typer.Argument(..., exists=True, dir_okay=False, help="candidates JSONL (or, with --policy, task rows)"),
    method: list[str] = typer.Option(["bon", "majority", "pass@k"], "--method", "-m", help="repeat or comma list: " + ", ".join(ALL)),
    reward: list[str] = typer.Option([], "--reward", "-r", help="the reward that ranks candidates (else the rows' score field)"),
    config: Path | None = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="a rubric TOML as the ranking reward"),
    gold: str = typer.Option("math", help="the reward that decides correctness"),
    gold_threshold: float = typer.Option(1.0, "--gold-threshold", help="a gold score at or above this is correct"),
    n: str = typer.Option("1,2,4,8,16,32,64", "--n", help="candidate counts of the curves"),
    draws: int = typer.Option(50, min=1, help="subsets drawn per n (the bootstrap bands)"),
    aggregation: str = typer.Option("min", help="bon over step scores: min, product, last or mean"),
    borda_p: float = typer.Option(0.5, "--borda-p", help="Borda exponent (0 = majority)"),
    policy: str | None = typer.Option(None, "--policy", help="generate the candidates from this policy (the rows are tasks)"),
    samples: int = typer.Option(16, "--samples", help="with --policy: candidates per prompt"),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens"),
    width: int = typer.Option(4, "--width", help="beam / dvts: children per kept path (M)"),
    max_steps: int = typer.Option(6, "--max-steps", help="beam / dvts / particle: the most steps per solution"),
    step_tokens: int = typer.Option(48, "--step-tokens", help="beam / dvts / particle: the most tokens per step"),
    report: Path | None = typer.Option(None, "--report", help="folder for report.json and scaling.png"),
    workers: int = typer.Option(2, "--workers", "-w", min=0),
    seed: int = typer.Option(0),
) -> None:
    """Pick an answer per prompt by each method; accuracy against N with bands, tokens spent."""
    from payoff.cli.score import resolve_reward
    from payoff.registry import get_reward
    from payoff.select.curves import scaling_curves
    from payoff.select.run import generate_candidates, group_candidates, prepare
    from payoff.tasks.loader import read_table

    chosen = [m.strip() for option in method for m in option.split(",") if m.strip()]
    for name in chosen:
        if name not in ALL + GENERATIVE:
            raise typer.BadParameter(f"unknown method {name!r}; methods: {', '.join(ALL + GENERATIVE)}", param_hint="--method")
    searches = [m for m in chosen if m in GENERATIVE]
    methods = [m for m in chosen if m not in GENERATIVE]
    if searches and (policy is None or not (reward or config is not None)):
        raise typer.BadParameter(f"{', '.join(searches)} search step by step: give --policy (the generator) and --reward "
                                 "(the step scorer, e.g. a prm)", param_hint="--method")
    try:
        ns = sorted({int(x) for x in n.split(",") if x.strip()})
    except ValueError:
        raise typer.BadParameter(f"--n must be a comma list of integers, got {n!r}", param_hint="--n") from None
    rows = read_table(candidates)
    ranking = resolve_reward(reward, config) if reward or config is not None else None
    if not methods:  # search methods only
        from payoff.select.search import search_curves

        result = search_curves(rows, searches, ns, ranking, get_reward(gold), policy, width, max_steps, step_tokens, seed=seed,
                               gold_threshold=gold_threshold, workers=workers)
        result.update({"prompts": len(rows), "pool": 0, "methods": searches, "gold": gold, "reward": ranking.name})
        _show(result, report)
        return
    if policy is not None:
        prompts = generate_candidates(rows, samples, policy, max_new_tokens, seed=seed)
    else:
        try:
            prompts = group_candidates(rows)
        except ValueError as error:
            err.print(f"[red]{candidates}: {error}[/]")
            raise typer.Exit(2) from None
    statuses = prepare(prompts, ranking, get_reward(gold), workers, gold_threshold)
    result = scaling_curves(prompts, methods, ns, draws, seed, aggregation, borda_p)
    result.update({"statuses": statuses, "methods": chosen, "gold": gold, "reward": ranking.name if ranking else "score field"})
    if searches:
        from payoff.select.search import search_curves

        found = search_curves(rows, searches, ns, ranking, get_reward(gold), policy, width, max_steps, step_tokens, seed=seed,
                              gold_threshold=gold_threshold, workers=workers)
        for key in ("curves", "bands", "tokens"):
            result[key].update(found[key])
    _show(result, report)


def _show(result: dict, report: Path | None) -> None:
    from rich.table import Table

    from payoff.select.curves import plot_scaling

    table = Table(title=f"payoff select: {result['prompts']} prompts, pool {result['pool']}")
    table.add_column("method")
    shown = sorted({k for curve in result["curves"].values() for k in curve})
    for k in shown:
        table.add_column(f"n={k}", justify="right")
    for name, curve in result["curves"].items():
        table.add_row(name, *[f"{curve[k]:.3f}" for k in shown])
    err.print(table)
    if report is not None:
        report.mkdir(parents=True, exist_ok=True)
        (report / "report.json").write_text(json.dumps(result, indent=1))
        plot_scaling(result, report / "scaling.png")
        err.print(f"wrote {report / 'report.json'} and {report / 'scaling.png'}")
    typer.echo(json.dumps({"curves": result["curves"], "tokens": result["tokens"]}))
