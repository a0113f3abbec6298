"""`payoff rm`: reward models. ``train`` a Bradley-Terry RM from preference pairs, ``pairs`` builds
pairs from verifier-scored samples, ``sample`` draws N completions per prompt from a policy (and
scores them) to pair."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

app = typer.Typer(help="Reward models: sample, pair, train.", no_args_is_help=True)
err = Console(stderr=True)


@app.command("train")
def train_command(
    config: Path | None = typer.Argument(None, help="TOML config (docs/rm.md); [data] train = PAIRS is required"),
    set_: list[str] = typer.Option([], "--set", help="override a config value: section.key=value (TOML value), repeatable"),
    resume: Path | None = typer.Option(None, "--resume", help="continue the run in this folder from its newest checkpoint"),
) -> None:
    """Train a Bradley-Terry reward model; prints held-out pairwise accuracy before and after."""
    from payoff.rm.config import load_rm_config
    from payoff.rm.train import train_reward_model
    from payoff.runs.config import ConfigError
    from payoff.tasks.preferences import PreferenceDataError

    base = None
    if resume is not None and config is None and (resume / "config.json").exists():
        base = json.loads((resume / "config.json").read_text())
    try:
        loaded = load_rm_config(config, list(set_), base=base)
    except (ConfigError, OSError) as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    try:
        summary = train_reward_model(loaded, resume=resume, console=err)
    except PreferenceDataError as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    typer.echo(json.dumps({k: v for k, v in summary.items() if k not in ("before", "after", "data")}))


@app.command("pairs")
def pairs_command(
    scored: Path = typer.Argument(..., exists=True, dir_okay=False, help="scored JSONL (payoff score / payoff rm sample output)"),
    out: Path = typer.Option(..., "--out", "-o", help="preference pairs JSONL (TRL's format)"),
    mode: str = typer.Option("correct", help="correct: correct x incorrect; margin: scores differ by >= --min-margin"),
    threshold: float = typer.Option(1.0, help="a score at or above this is correct (mode correct)"),
    min_margin: float = typer.Option(0.0, "--min-margin", help="smallest score gap that makes a pair (mode margin)"),
    max_per_prompt: int | None = typer.Option(None, "--max-per-prompt", min=1, help="at most this many pairs per prompt (balance)"),
    ties: bool = typer.Option(False, "--ties", help="also write pairs of equal score, marked tie"),
    keep_margin: bool = typer.Option(False, "--keep-margin", help="write the score gap as the pair's margin"),
    seed: int = typer.Option(0, help="seed of the per-prompt subsampling"),
) -> None:
    """Build chosen / rejected pairs within each prompt group of scored samples."""
    from payoff.io import check_writable, dump_line, read_records
    from payoff.rm.pairs import build_pairs

    problem = check_writable(out)
    if problem:
        err.print(f"[red]{problem}[/]")
        raise typer.Exit(2)
    lines, _ = read_records(scored)
    bad = [line for line in lines if line.record is None]
    for line in bad[:5]:
        err.print(f"[yellow]{line.problem}[/]")
    try:
        good = [line for line in lines if line.record is not None]
        pairs, report = build_pairs([line.record for line in good], mode, threshold, min_margin, max_per_prompt, ties, keep_margin, seed,
                                    where=[f"line {line.number}" for line in good])
    except ValueError as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    if bad:
        report.left_out["unreadable line"] = len(bad)
    with open(out, "w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(dump_line(pair))
    err.print(f"{report.pairs} pairs from {report.groups_with_pairs} of {report.groups} prompt groups ({report.rows} rows) -> {out}")
    if report.left_out:
        err.print(f"left out: {report.left_out}")
    if report.off_prompt:
        err.print(f"[yellow]{report.off_prompt} rows carry another prompt than their group's first ({', '.join(report.off_prompt_rows)}): "
                  "paired within their own prompt[/]")
    typer.echo(json.dumps(report.to_dict()))


@app.command("sample")
def sample_command(
    out: Path = typer.Option(..., "--out", "-o", help="JSONL of completions (scored when --reward/--config is given)"),
    task: str = typer.Option("arithmetic", help="arithmetic, gsm8k (train split), gsm8k_test, math, or file"),
    data: Path | None = typer.Option(None, "--data", help="task rows (JSONL/Parquet/datasets folder) for --task file"),
    prompts: int = typer.Option(64, min=1, help="number of prompts"),
    n: int = typer.Option(8, "--n", min=1, help="completions per prompt"),
    policy: str = typer.Option("smollm2-135m-instruct", help="the embedded default or a local model folder"),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1),
    temperature: float = typer.Option(1.0, min=0.0),
    seed: int = typer.Option(0),
    task_seed: int = typer.Option(1, "--task-seed", help="seed of the procedural task / of the row subsample"),
    level: int = typer.Option(1, help="arithmetic level"),
    reward: list[str] = typer.Option([], "--reward", "-r", help="score each completion: NAME[:WEIGHT], repeatable"),
    config: Path | None = typer.Option(None, "--config", "-c", exists=True, dir_okay=False, help="score with a rubric TOML"),
    workers: int = typer.Option(2, "--workers", "-w", min=0),
) -> None:
    """Draw N completions per prompt from a policy; with a reward, score them too (then `payoff rm pairs`)."""
    from payoff.io import check_writable, dump_line
    from payoff.rm.pairs import sample_completions

    problem = check_writable(out)
    if problem:
        err.print(f"[red]{problem}[/]")
        raise typer.Exit(2)
    rows = task_rows_for(task, prompts, task_seed, data, level)
    scorer = None
    if reward or config is not None:
        from payoff.cli.score import resolve_reward

        scorer = resolve_reward(reward, config)
    from rich.progress import Progress

    with Progress(console=err) as progress:
        bar = progress.add_task("sample", total=len(rows))
        samples = sample_completions(rows, n, policy, max_new_tokens, temperature, seed,
                                     on_progress=lambda k: progress.advance(bar, k))
    if scorer is not None:
        from payoff.engine import Engine

        with Engine(scorer, workers=workers) as engine:
            outcomes = engine.score(samples)
        for sample, outcome in zip(samples, outcomes):
            sample.update(outcome.to_dict())
    with open(out, "w", encoding="utf-8") as handle:
        for sample in samples:
            handle.write(dump_line(sample))
    correct = sum(1 for s in samples if isinstance(s.get("reward"), (int, float)) and s["reward"] >= 1)
    err.print(f"{len(samples)} completions for {len(rows)} prompts -> {out}" + (f" ({correct} scored >= 1)" if scorer else ""))


def task_rows_for(task: str, count: int, seed: int, data: Path | None, level: int) -> list[dict[str, Any]]:
    import random

    if task == "arithmetic":
        from payoff.tasks.arithmetic import arithmetic

        return arithmetic(count, seed=seed, level=level)
    if task in ("gsm8k", "gsm8k_test", "math", "math500"):
        from payoff.tasks.mathdata import math_rows

        name = {"gsm8k": "gsm8k_train", "gsm8k_test": "gsm8k_test", "math": "math_train", "math500": "math500"}[task]
        rows = math_rows(name)
        picked = random.Random(seed).sample(range(len(rows)), min(count, len(rows)))
        return [{"prompt": rows[i]["prompt"], "reference": rows[i]["answer"], "meta": rows[i]["meta"]} for i in sorted(picked)]
    if task == "file":
        if data is None:
            raise typer.BadParameter("--task file needs --data PATH", param_hint="--data")
        from payoff.tasks.loader import load_rows

        return load_rows(data, limit=count)
    raise typer.BadParameter(f"unknown task {task!r}", param_hint="--task")


def dpo_command(
    config: Path | None = typer.Argument(None, help="TOML config (docs/dpo.md); [data] train = PAIRS is required"),
    set_: list[str] = typer.Option([], "--set", help="override a config value: section.key=value (TOML value), repeatable"),
    resume: Path | None = typer.Option(None, "--resume", help="continue the run in this folder from its newest checkpoint"),
) -> None:
    """Offline preference optimisation (DPO, IPO, conservative/robust DPO, SimPO, RPO)."""
    from payoff.dpo.config import load_dpo_config
    from payoff.dpo.train import train_dpo
    from payoff.runs.config import ConfigError
    from payoff.tasks.preferences import PreferenceDataError

    base = json.loads((resume / "config.json").read_text()) if resume is not None and config is None and (resume / "config.json").exists() else None
    try:
        loaded = load_dpo_config(config, list(set_), base=base)
        summary = train_dpo(loaded, resume=resume, console=err)
    except (ConfigError, PreferenceDataError, OSError) as error:
        err.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    typer.echo(json.dumps({k: v for k, v in summary.items() if k not in ("before", "after", "data")}))
