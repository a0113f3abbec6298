"""`train()`: the whole run around `Trainer.train_step`: held-out evaluation before and after,
checkpoints and resume, the progress display, metrics, monitors, the curves and summary.json."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from payoff.rl.config import TrainConfig
from payoff.rl.evaluate import AccuracyJoin, evaluate
from payoff.rl.trainer import Trainer
from payoff.runs.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from payoff.runs.metrics import MetricsLog, plot_curves


def _evaluate(trainer: Trainer, engine: Any, pass_k: int = 0) -> dict[str, Any]:
    """Held-out evaluation on its own random stream: evaluating (or not, or with pass@k) never
    changes the training trajectory, and pass@k is reproducible under the seed."""
    import torch

    rows = trainer.eval_rows or []
    cfg = trainer.config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 7919)
        return evaluate(trainer.generator, engine, rows, trainer.render(rows), trainer.eval_params, trainer.component,
                        cfg.eval.threshold, pass_k)


def _trainer_state(trainer: Trainer, extra: dict[str, Any]) -> dict[str, Any]:
    """Everything besides weights, optimiser and RNG that shapes the rest of the run."""
    shapers = getattr(getattr(trainer.reward, "options", None), "shapers", None) or []
    return {"position": trainer.position, "success_history": list(trainer.success_history), "std_threshold": trainer.std_threshold,
            "train_seconds": trainer.train_seconds,
            "shapers": [shaper.state_dict() if hasattr(shaper, "state_dict") else None for shaper in shapers],
            "monitor": trainer.monitor.state_dict() if trainer.monitor is not None else None, **extra}


def _parts(trainer: Trainer) -> dict[str, Any]:
    """What a checkpoint holds besides the policy and its optimiser: PPO's critic."""
    if trainer.critic is None:
        return {}
    return {"critic": trainer.critic, "critic_optimizer": trainer.critic_optimizer}


def _restore_trainer_state(trainer: Trainer, state: dict[str, Any]) -> None:
    trainer.step, trainer.position = state["step"], state["position"]
    trainer.success_history.extend(state.get("success_history", []))
    trainer.std_threshold = float(state.get("std_threshold", 0.0))
    trainer.train_seconds = float(state.get("train_seconds", 0.0))
    shapers = getattr(getattr(trainer.reward, "options", None), "shapers", None) or []
    for shaper, saved in zip(shapers, state.get("shapers") or []):
        if saved is not None and hasattr(shaper, "load_state_dict"):
            shaper.load_state_dict(saved)
    if trainer.monitor is not None and state.get("monitor"):
        trainer.monitor.load_state_dict(state["monitor"])


def train(config: TrainConfig, resume: str | Path | None = None, console: Any = None, **parts: Any) -> dict[str, Any]:
    """Run training; returns the summary (also written to ``run_dir/summary.json``)."""
    from rich.console import Console

    from payoff.engine import Engine

    console = console or Console(stderr=True)
    run_dir = Path(resume) if resume else Path(config.run_dir)
    if resume:
        config = config.model_copy(update={"run_dir": str(run_dir)})
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    trainer = Trainer(config, **parts)
    trainer.started, trainer.wall_before = started, 0.0
    checkpoint = latest_checkpoint(run_dir) if resume else None
    state: dict[str, Any] = {}
    if resume and checkpoint is None and (run_dir / "metrics.jsonl").exists():
        console.print(f"[yellow]no checkpoint in {run_dir}; starting from step 0[/]")
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, trainer.policy.model, trainer.optimizer, _parts(trainer))
        _restore_trainer_state(trainer, state)
        trainer.wall_before = float(state.get("wall_seconds_before_resume", 0.0))
        console.print(f"resumed from {checkpoint} (step {trainer.step})")
    else:
        (run_dir / "config.json").write_text(config.model_dump_json(indent=1))
    log = MetricsLog(run_dir, config.log.tensorboard, resume_step=trainer.step if checkpoint is not None else None)
    if checkpoint is None and (run_dir / "metrics.jsonl").exists():
        (run_dir / "metrics.jsonl").unlink()  # a fresh run into an old folder starts a fresh log
    from payoff.registry import get_reward

    policy_reward = getattr(trainer.reward, "policy_scorer", None) is not None
    engine_reward = trainer.reward
    if policy_reward:  # scored in this process on the live policy; the engine only checks accuracy
        engine_reward = get_reward(config.accuracy_reward) if config.accuracy_reward else None
    with contextlib.ExitStack() as engines:
        def open_engine(reward: Any) -> Engine:
            return engines.enter_context(Engine(reward, workers=config.engine.workers, timeout_s=config.engine.timeout_s))

        engine = open_engine(engine_reward) if engine_reward else None
        if trainer.accuracy_join and not policy_reward:
            engine = AccuracyJoin(engine, open_engine(get_reward(trainer.accuracy_join)), trainer.accuracy_join)
        if policy_reward:
            from payoff.rl.policy_rewards import PolicyScoring

            engine = PolicyScoring(trainer.reward, trainer.policy, config.model.chat_template, config.model.system, engine,
                                   config.accuracy_reward)
        if "before" in state:
            before = state["before"]
        else:
            before = _evaluate(trainer, engine, config.eval.pass_k)
            before = {k: v for k, v in before.items() if k not in ("completions", "statuses")}
        if before:
            console.print(f"held-out before: accuracy {before.get('accuracy', 0):.1%}"
                          + (f", pass@{config.eval.pass_k} {before.get(f'pass@{config.eval.pass_k}', 0):.1%}" if config.eval.pass_k else ""))
        _loop(trainer, engine, log, console, before)
        after = _evaluate(trainer, engine, config.eval.pass_k) if trainer.eval_rows else {}
    wall = trainer.wall_seconds()
    summary: dict[str, Any] = {
        "steps": trainer.step, "seed": config.seed, "wall_seconds": round(wall, 1), "train_seconds": round(trainer.train_seconds, 1),
        "accuracy_before": before.get("accuracy"), "accuracy_after": after.get("accuracy"),
        "algorithm": config.algorithm.advantage if config.algorithm.selection == "none" else config.algorithm.selection,
        "eval_size": len(trainer.eval_rows or []), "resumed_from": str(checkpoint) if checkpoint else None,
    }
    if config.eval.pass_k:
        key = f"pass@{config.eval.pass_k}"
        summary[f"{key}_before"], summary[f"{key}_after"] = before.get(key), after.get(key)
    if after.get("completions"):
        examples = [{"prompt": r["prompt"], "reference": r.get("reference"), "completion": c}
                    for r, c in zip(trainer.eval_rows[:5], after["completions"][:5])]
        summary["heldout_examples_after"] = examples
    rows = log.rows()
    if config.log.plot and rows:
        picture = plot_curves(rows, run_dir / "curves.png", title=f"{summary['algorithm']} seed {config.seed}")
        summary["plot"] = str(picture) if picture else None
    log.close()
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    if summary["accuracy_after"] is not None:
        console.print(f"held-out accuracy: {summary['accuracy_before']:.1%} -> {summary['accuracy_after']:.1%} "
                      f"after {trainer.step} steps in {wall:.0f} s ({run_dir})")
    return summary


def _loop(trainer: Trainer, engine: Any, log: MetricsLog, console: Any, before: dict[str, Any]) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    cfg = trainer.config
    columns = [TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("reward {task.fields[reward]}"),
               TextColumn("acc {task.fields[acc]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=not cfg.log.progress, transient=False) as progress:
        bar = progress.add_task("train", total=cfg.steps, completed=trainer.step, reward="-", acc="-")
        while trainer.step < cfg.steps and not trainer.out_of_time():
            result = trainer.train_step(engine)
            metrics, batch = result.metrics, result.batch
            trainer.step += 1
            trainer.train_seconds += metrics["time_step"]
            last = trainer.step == cfg.steps or trainer.out_of_time()
            row: dict[str, Any] = {"step": trainer.step, "train_seconds": trainer.train_seconds, **metrics}
            if cfg.eval.every and trainer.step % cfg.eval.every == 0 and not last:
                row["heldout_accuracy"] = _evaluate(trainer, engine)["accuracy"]
            if trainer.monitor is not None:
                samples = [{"completion": t, "prompt": "", "meta": {"num_tokens": len(c)}}
                           for t, c in zip(batch.rollouts.texts, batch.rollouts.completion_ids)]
                report = trainer.monitor.update(trainer.step, samples, batch.outcomes, row.get("heldout_accuracy"))
                row.update({f"monitor/{k}": v for k, v in report.metrics.items()})
                row["warnings"] = report.warnings
                for warning in report.warnings:
                    progress.console.print(f"[yellow]step {trainer.step}: {warning}[/]")
            log.log(row)
            if cfg.log.samples_every and trainer.step % cfg.log.samples_every == 0:
                # Enough to rescore offline (`payoff rescore`): the reference, the prompt group, the status.
                shown = [{"prompt": batch.rows[i // batch.group_size]["prompt"],
                          "reference": batch.rows[i // batch.group_size].get("reference"),
                          "group": f"{trainer.step}-{i // batch.group_size}",
                          "completion": batch.rollouts.texts[i],
                          "reward": batch.outcomes[i].score, "status": batch.outcomes[i].status}
                         for i in range(min(cfg.log.samples_shown, len(batch.outcomes)))]
                log.log_samples(trainer.step, shown)
                for item in shown:
                    progress.console.print(f"[dim]step {trainer.step} | {item['completion'][:80]!r} -> {item['reward']}[/]")
            progress.update(bar, completed=trainer.step, reward=f"{metrics['reward_mean']:.3f}", acc=f"{metrics['accuracy']:.0%}")
            if trainer.on_step is not None:
                trainer.on_step(row)
            if trainer.on_result is not None:
                trainer.on_result(result)
            if cfg.checkpoint_every and (trainer.step % cfg.checkpoint_every == 0 or last):
                save_checkpoint(Path(cfg.run_dir), trainer.step, trainer.policy.model, trainer.optimizer,
                                _trainer_state(trainer, {"before": before, "wall_seconds_before_resume": trainer.wall_seconds()}),
                                cfg.keep_checkpoints, _parts(trainer))
