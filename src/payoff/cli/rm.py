"""`payoff rm`: reward models. ``sample`` draws N completions (or, with ``--env``, N episodes) per
prompt from a policy (and scores them), ``pairs`` builds preference pairs from scored samples, ``train`` fits a Bradley-Terry RM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from payoff.cli.options import (
    CONFIG,
    ENV,
    ENV_SET,
    REPORT,
    RESUME,
    REWARD,
    SET,
    TIMEOUT_S,
    WORKERS,
    env_config,
    episode_parts,
    resolve_reward,
    run_trainer,
    worker_count,
)
from payoff.cli.report import emit, err, markdown_table, write_report, wrote

app = typer.Typer(help="Reward models: sample, pairs, train.", no_args_is_help=True)


@app.command("train")
def train_command(
    config: Path | None = typer.Argument(None, help="TOML config (docs/rm.md); data.train = PAIRS is required."),
    set_: list[str] = SET,
    resume: Path | None = RESUME,
) -> None:
    """Train a Bradley-Terry reward model; prints held-out pairwise accuracy before and after."""
    from payoff.rm.config import load_rm_config
    from payoff.rm.train import train_reward_model

    run_trainer(load_rm_config, train_reward_model, config, set_, resume)


@app.command("pairs")
def pairs_command(
    scored: Path = typer.Argument(..., exists=True, dir_okay=False, help="Scored JSONL (payoff score / payoff rm sample output)."),
    out: Path = typer.Option(..., "--out", "-o", help="Preference pairs JSONL (TRL's format)."),
    mode: str = typer.Option("correct", help="correct: correct x incorrect; margin: scores differ by >= --min-margin."),
    threshold: float = typer.Option(1.0, help="A score at or above this is correct (mode correct)."),
    min_margin: float = typer.Option(0.0, "--min-margin", help="Smallest score gap that makes a pair (mode margin)."),
    max_per_prompt: int | None = typer.Option(None, "--max-per-prompt", min=1, help="At most this many pairs per prompt (balance)."),
    ties: bool = typer.Option(False, "--ties", help="Also write pairs of equal score, marked tie."),
    keep_margin: bool = typer.Option(False, "--keep-margin", help="Write the score gap as the pair's margin."),
    seed: int = typer.Option(0, help="Seed of the per-prompt subsampling."),
    report: Path | None = REPORT,
) -> None:
    """Build chosen / rejected pairs within each prompt group of scored samples."""
    from payoff.io import check_writable, dump_line, read_records
    from payoff.rm.pairs import build_pairs

    problem = check_writable(out)
    if problem:
        raise typer.BadParameter(problem, param_hint="--out")
    lines, _ = read_records(scored)
    bad = [line for line in lines if line.record is None]
    for line in bad[:5]:
        err.print(f"[yellow]{line.problem}[/]")
    try:
        good = [line for line in lines if line.record is not None]
        pairs, counts = build_pairs([line.record for line in good], mode, threshold, min_margin, max_per_prompt, ties, keep_margin, seed,
                                    where=[f"line {line.number}" for line in good])
    except ValueError as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    if bad:
        counts.left_out["unreadable line"] = len(bad)
    with open(out, "w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(dump_line(pair))
    err.print(f"{counts.pairs} pairs from {counts.groups_with_pairs} of {counts.groups} prompt groups ({counts.rows} rows) -> {out}")
    if counts.left_out:
        err.print(f"left out: {counts.left_out}")
    if counts.off_prompt:
        err.print(f"[yellow]{counts.off_prompt} rows carry another prompt than their group's first ({', '.join(counts.off_prompt_rows)}): "
                  "paired within their own prompt[/]")
    result = counts.to_dict()
    if report is not None:
        wrote(write_report(report, result, markdown_table(f"payoff rm pairs {scored.name}", _flat(result))))
    emit(result)


@app.command("sample")
def sample_command(
    tasks: Path | None = typer.Argument(None, exists=True, help="Task rows (JSONL / Parquet / datasets folder); else --task."),
    out: Path = typer.Option(..., "--out", "-o", help="JSONL of completions (scored when --reward or --config is given)."),
    task: str = typer.Option("arithmetic", help="Without TASKS, a built-in task: arithmetic, gsm8k (train split), gsm8k_test, math, math500."),
    reward: list[str] = REWARD,
    config: Path | None = CONFIG,
    set_: list[str] = SET,
    workers: int | None = WORKERS,
    timeout_s: float | None = TIMEOUT_S,
    prompts: int = typer.Option(64, min=1, help="Number of prompts."),
    n: int = typer.Option(8, "--n", min=1, help="Completions per prompt."),
    policy: str = typer.Option("smollm2-135m-instruct", help="The embedded default or a local model folder."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1, help="The most tokens per completion."),
    temperature: float = typer.Option(1.0, min=0.0, help="Sampling temperature."),
    seed: int = typer.Option(0, help="Seed of the sampling."),
    task_seed: int = typer.Option(1, "--task-seed", help="Seed of the procedural task / of the row subsample."),
    level: int = typer.Option(1, help="Arithmetic level."),
    env: str | None = ENV,
    env_set: list[str] = ENV_SET,
) -> None:
    """Draw N completions per prompt from a policy; with a reward, score them too (then `payoff rm pairs`).
    With --env, N episodes per prompt, each scored as an episode (by --reward, else the environment's reward)."""
    from payoff.io import check_writable
    from payoff.rm.pairs import sample_completions

    problem = check_writable(out)
    if problem:
        raise typer.BadParameter(problem, param_hint="--out")
    scorer = resolve_reward(reward, config, set_) if reward or config is not None or set_ else None
    environment = env_config(env, env_set)
    rows = task_rows_for(task, prompts, task_seed, tasks, level)
    from rich.progress import Progress

    if environment is not None:
        samples = _sample_episodes(rows, n, policy, max_new_tokens, temperature, seed, environment, scorer, worker_count(workers), timeout_s)
        _write(out, samples)
        ok = [s for s in samples if s["status"] == "ok"]
        correct = sum(1 for s in ok if isinstance(s.get("reward"), (int, float)) and s["reward"] >= 1)
        err.print(f"{len(samples)} episodes for {len(rows)} prompts -> {out} ({correct} scored >= 1, "
                  f"{len(samples) - len(ok)} not scored: an error)")
        emit({"episodes": len(samples), "prompts": len(rows), "out": str(out), "scored_at_least_1": correct,
              "errors": len(samples) - len(ok), "turns_mean": sum(s["meta"]["turns"] for s in samples) / max(len(samples), 1)})
        return
    with Progress(console=err) as progress:
        bar = progress.add_task("sample", total=len(rows))
        samples = sample_completions(rows, n, policy, max_new_tokens, temperature, seed,
                                     on_progress=lambda k: progress.advance(bar, k))
    if scorer is not None:
        from payoff.engine import Engine

        with Engine(scorer, workers=worker_count(workers), timeout_s=timeout_s) as engine:
            outcomes = engine.score(samples)
        for sample, outcome in zip(samples, outcomes):
            sample.update(outcome.to_dict())
    _write(out, samples)
    correct = sum(1 for s in samples if isinstance(s.get("reward"), (int, float)) and s["reward"] >= 1)
    err.print(f"{len(samples)} completions for {len(rows)} prompts -> {out}" + (f" ({correct} scored >= 1)" if scorer else ""))
    emit({"completions": len(samples), "prompts": len(rows), "out": str(out), **({"scored_at_least_1": correct} if scorer else {})})


def _sample_episodes(rows: list[dict[str, Any]], n: int, policy: str, max_new_tokens: int, temperature: float, seed: int,
                     environment: Any, scorer: Any, workers: int, timeout_s: float | None) -> list[dict[str, Any]]:
    from rich.progress import Progress

    from payoff.models.draw import draw_episodes, local_generator, score_episodes
    from payoff.models.rollout import SamplingParams

    make_env, limits, own = episode_parts(environment)
    generator, tokenizer = local_generator(policy, seed=seed)
    with Progress(console=err) as progress:
        bar = progress.add_task("episodes", total=len(rows))
        drawn = draw_episodes(generator, tokenizer, rows, n, make_env, SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature),
                              limits, seed, workers=environment.workers, on_progress=lambda k: progress.advance(bar, k))
    return score_episodes(drawn, scorer or own, workers, timeout_s)


def _write(out: Path, samples: list[dict[str, Any]]) -> None:
    from payoff.io import dump_line

    with open(out, "w", encoding="utf-8") as handle:
        for sample in samples:
            handle.write(dump_line(sample))


def task_rows_for(task: str, count: int, seed: int, tasks: Path | None, level: int) -> list[dict[str, Any]]:
    import random

    if tasks is not None:
        from payoff.tasks.loader import load_rows

        return load_rows(tasks, limit=count)
    if task == "arithmetic":
        from payoff.tasks.arithmetic import arithmetic

        return arithmetic(count, seed=seed, level=level)
    if task in ("gsm8k", "gsm8k_test", "math", "math500"):
        from payoff.tasks.mathdata import math_rows

        name = {"gsm8k": "gsm8k_train", "gsm8k_test": "gsm8k_test", "math": "math_train", "math500": "math500"}[task]
        rows = math_rows(name)
        picked = random.Random(seed).sample(range(len(rows)), min(count, len(rows)))
        return [{"prompt": rows[i]["prompt"], "reference": rows[i]["answer"], "meta": rows[i]["meta"]} for i in sorted(picked)]
    raise typer.BadParameter(f"unknown task {task!r}; give a built-in task or a TASKS file", param_hint="--task")


def _flat(result: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in result.items():
        if isinstance(value, dict):
            rows += _flat(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows
