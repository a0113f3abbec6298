"""`payoff select CANDIDATES --method M [--reward SPEC] [--gold SPEC] [--n 1,2,4] [--report DIR]`."""

from __future__ import annotations

from pathlib import Path

import typer

from payoff.cli.options import (
    CONFIG,
    ENV,
    ENV_SET,
    GOLD,
    REPORT,
    REWARD,
    SET,
    TIMEOUT_S,
    WORKERS,
    env_config,
    episode_parts,
    gold_reward,
    resolve_reward,
    worker_count,
)
from payoff.cli.report import emit, err, markdown_table, write_report, wrote

ALL = ("bon", "majority", "weighted_vote", "self_certainty", "borda", "pass@k", "maj@k")
GENERATIVE = ("beam", "dvts", "particle")


def select_command(
    candidates: Path = typer.Argument(..., exists=True, dir_okay=False, help="Candidates JSONL (or, with --policy, task rows)."),
    method: list[str] = typer.Option(["bon", "majority", "pass@k"], "--method", "-m",
                                     help="Repeat or comma list: " + ", ".join(ALL + GENERATIVE) + "."),
    reward: list[str] = REWARD,
    config: Path | None = CONFIG,
    set_: list[str] = SET,
    workers: int | None = WORKERS,
    timeout_s: float | None = TIMEOUT_S,
    gold: str = GOLD,
    gold_threshold: float = typer.Option(1.0, "--gold-threshold", help="A gold score at or above this is correct."),
    n: str = typer.Option("1,2,4,8,16,32,64", "--n", help="Candidate counts of the curves."),
    draws: int = typer.Option(50, min=1, help="Subsets drawn per n (the bootstrap bands)."),
    aggregation: str = typer.Option("min", help="bon over step scores: min, product, last or mean."),
    borda_p: float = typer.Option(0.5, "--borda-p", help="Borda exponent (0 = majority)."),
    policy: str | None = typer.Option(None, "--policy", help="Generate the candidates from this policy (the rows are tasks)."),
    samples: int = typer.Option(16, "--samples", help="With --policy: candidates per prompt."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", help="With --policy: the most tokens per candidate (per turn with --env)."),
    width: int = typer.Option(4, "--width", help="beam / dvts: children per kept path (M)."),
    max_steps: int = typer.Option(6, "--max-steps", help="beam / dvts / particle: the most steps per solution."),
    step_tokens: int = typer.Option(48, "--step-tokens", help="beam / dvts / particle: the most tokens per step."),
    seed: int = typer.Option(0, help="Seed of the subsets drawn and of the generation."),
    env: str | None = ENV,
    env_set: list[str] = ENV_SET,
    report: Path | None = REPORT,
) -> None:
    """Pick an answer per prompt by each method; accuracy against N with bands, tokens spent.

    The reward ranks the candidates (without one, the rows' score field); the gold reward decides
    which are correct. With --policy and --env the candidates are episodes, ranked by the reward
    (else the environment's own) over the whole episode and voted on by their final answers.
    With --report, also DIR/scaling.png."""
    from payoff.select.curves import scaling_curves
    from payoff.select.run import episode_candidates, generate_candidates, group_candidates, prepare
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
    environment = env_config(env, env_set)
    if environment is not None:
        if policy is None:
            raise typer.BadParameter("--env plays episodes: give --policy (the rows are then tasks)", param_hint="--env")
        unsupported = [m for m in chosen if m in GENERATIVE or m in ("borda", "self_certainty")]
        if unsupported:
            raise typer.BadParameter(f"{', '.join(unsupported)} cannot pick among episodes (they search step by step or need "
                                     "self-certainty, which episodes do not carry)", param_hint="--method")
    try:
        ns = sorted({int(x) for x in n.split(",") if x.strip()})
    except ValueError:
        raise typer.BadParameter(f"--n must be a comma list of integers, got {n!r}", param_hint="--n") from None
    rows = read_table(candidates)
    ranking = resolve_reward(reward, config, set_) if reward or config is not None or set_ else None
    judge, workers = gold_reward(gold), worker_count(workers)
    if not methods:  # search methods only
        from payoff.select.search import search_curves

        result = search_curves(rows, searches, ns, ranking, judge, policy, width, max_steps, step_tokens, seed=seed,
                               gold_threshold=gold_threshold, workers=workers, timeout_s=timeout_s)
        result.update({"prompts": len(rows), "pool": 0, "methods": searches, "gold": gold, "reward": ranking.name})
        _show(result, report)
        return
    scored_by = ranking.name if ranking else "score field"
    if environment is not None:
        from payoff.models.draw import local_generator

        make_env, limits, own = episode_parts(environment)
        generator, tokenizer = local_generator(policy, seed=seed)  # type: ignore[arg-type]
        prompts = episode_candidates(rows, samples, generator, tokenizer, make_env, limits, None if ranking else own, max_new_tokens,
                                     seed=seed, env_workers=environment.workers, workers=workers, timeout_s=timeout_s)
        scored_by = ranking.name if ranking else f"episode outcome ({own.name})"
    elif policy is not None:
        prompts = generate_candidates(rows, samples, policy, max_new_tokens, seed=seed)
    else:
        try:
            prompts = group_candidates(rows)
        except ValueError as error:
            err.print(f"[red]{candidates}: {error}[/]")
            raise typer.Exit(2) from None
    statuses = prepare(prompts, ranking, judge, workers, gold_threshold, timeout_s=timeout_s)
    result = scaling_curves(prompts, methods, ns, draws, seed, aggregation, borda_p)
    result.update({"statuses": statuses, "methods": chosen, "gold": gold, "reward": scored_by})
    if environment is not None:
        result["env"] = environment.model_dump()
    if searches:
        from payoff.select.search import search_curves

        found = search_curves(rows, searches, ns, ranking, judge, policy, width, max_steps, step_tokens, seed=seed,
                              gold_threshold=gold_threshold, workers=workers, timeout_s=timeout_s)
        for key in ("curves", "bands", "tokens"):
            result[key].update(found[key])
    _show(result, report)


def _show(result: dict, report: Path | None) -> None:
    from rich.table import Table

    from payoff.select.curves import plot_scaling

    title = f"payoff select: {result['prompts']} prompts, pool {result['pool']}"
    table = Table(title=title)
    table.add_column("method")
    shown = sorted({k for curve in result["curves"].values() for k in curve})
    for k in shown:
        table.add_column(f"n={k}", justify="right")
    for name, curve in result["curves"].items():
        table.add_row(name, *[f"{curve[k]:.3f}" for k in shown])
    err.print(table)
    if report is not None:
        rows = [(f"{name} n={k}", f"{curve[k]:.3f}") for name, curve in result["curves"].items() for k in shown if k in curve]
        written = write_report(report, result, markdown_table(title, rows, header=("method", "accuracy")))
        plot_scaling(result, report / "scaling.png")
        wrote([*written, report / "scaling.png"])
    emit({"curves": result["curves"], "tokens": result["tokens"]})
