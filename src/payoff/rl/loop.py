"""`train()`: an RL run, top to bottom: the run folder and resume (`payoff.runs.run.Run`), the
scorer, held-out accuracy before, then each step (`Trainer.train_step`), its metrics, monitor,
samples and checkpoint, and held-out accuracy and the summary after."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from payoff.models.precision import autocast
from payoff.rl.batch import Batch
from payoff.rl.config import TrainConfig
from payoff.rl.heldout import heldout_accuracy
from payoff.rl.policy_rewards import PolicyReward, PolicyScoring
from payoff.rl.scoring import AccuracyJoin, EngineScoring, RolloutScorer
from payoff.rl.trainer import Trainer
from payoff.runs.run import Bar, Run


def _heldout(trainer: Trainer, scorer: RolloutScorer, pass_k: int = 0) -> dict[str, Any]:
    """Held-out evaluation on its own random stream: evaluating (or not, or with pass@k) never
    changes the training trajectory, and pass@k is reproducible under the seed."""
    import torch

    rows = trainer.eval_rows or []
    cfg = trainer.config
    with torch.random.fork_rng(devices=[]), autocast(cfg.precision):
        torch.manual_seed(cfg.seed + 7919)
        if cfg.env is not None:  # greedy episodes: accuracy within the environment's tries, and at the first
            from payoff.rl.episode_batch import heldout_episodes

            return heldout_episodes(trainer.generator, trainer.policy.tokenizer, scorer, rows, cfg, trainer.eval_params,
                                    trainer.component)
        return heldout_accuracy(trainer.generator, scorer, rows, trainer.render(rows), trainer.eval_params, trainer.component,
                                cfg.eval.threshold, pass_k)


def _open_scorer(trainer: Trainer, engines: contextlib.ExitStack) -> RolloutScorer:
    """The reward through the engine; beside it the accuracy reward when that is not one of its
    terms; or, for a reward read from the policy, in this process on the live policy."""
    from payoff.engine import Engine
    from payoff.registry import get_reward

    config = trainer.config

    def open_engine(reward: Any) -> Engine:
        return engines.enter_context(Engine(reward, workers=config.engine.workers, timeout_s=config.engine.timeout_s))

    if isinstance(trainer.reward, PolicyReward):  # the engine only checks accuracy
        checker = open_engine(get_reward(config.accuracy_reward)) if config.accuracy_reward else None
        return PolicyScoring(trainer.reward, trainer.policy, config.model.chat_template, config.model.system, checker,
                             config.accuracy_reward)
    engine = open_engine(trainer.reward)
    if trainer.accuracy_join:
        return AccuracyJoin(engine, open_engine(get_reward(trainer.accuracy_join)), trainer.accuracy_join)
    return EngineScoring(engine)


def train(config: TrainConfig, resume: str | Path | None = None, console: Any = None, **parts: Any) -> dict[str, Any]:
    """Run training; returns the summary (also written to ``run_dir/summary.json``)."""
    run = Run(config, resume, console)  # the run folder; seeds python, numpy and torch
    config = run.config
    trainer = Trainer(config, **parts)
    trainer.load_state_dict(run.resume(trainer.policy.model, trainer.optimizer, trainer.parts()))
    with contextlib.ExitStack() as engines:
        scorer = _open_scorer(trainer, engines)
        if trainer.state.before is None:  # a resumed run keeps the evaluation it started with
            before = _heldout(trainer, scorer, config.eval.pass_k)
            trainer.state.before = {k: v for k, v in before.items() if k not in ("completions", "statuses")}
        before = trainer.state.before
        if before:
            pass_k = f", pass@{config.eval.pass_k} {before.get(f'pass@{config.eval.pass_k}', 0):.1%}" if config.eval.pass_k else ""
            run.console.print(f"held-out before: accuracy {before.get('accuracy', 0):.1%}{pass_k}")

        with run.progress("train", reward="-", acc="-") as bar:
            while run.step < config.steps and not trainer.out_of_time():
                with autocast(config.precision):  # bf16: generation, log-probs and backward; fp32 weights
                    result = trainer.train_step(scorer, run.step)
                run.step += 1
                metrics, batch = result.metrics, result.batch
                last = run.step == config.steps or trainer.out_of_time()
                row: dict[str, Any] = {"step": run.step, "train_seconds": trainer.state.train_seconds, **metrics}
                if config.eval.every and run.step % config.eval.every == 0 and not last:
                    heldout = _heldout(trainer, scorer)
                    row["heldout_accuracy"] = heldout["accuracy"]
                    if "accuracy_first" in heldout:
                        row["heldout_accuracy_first"] = heldout["accuracy_first"]
                if trainer.monitor is not None:
                    _monitor(trainer.monitor, run.step, batch, row, bar)
                run.log(row)
                if config.log.samples_every and run.step % config.log.samples_every == 0:
                    _log_samples(run, batch, config.log.samples_shown, bar)
                bar.update(run.step, reward=f"{metrics['reward_mean']:.3f}", acc=f"{metrics['accuracy']:.0%}")
                if trainer.on_step is not None:
                    trainer.on_step(row)
                if trainer.on_result is not None:
                    trainer.on_result(result)
                if run.checkpoint_due(last):
                    run.save(trainer.policy.model, trainer.optimizer, trainer.state_dict(), trainer.parts())

        after = _heldout(trainer, scorer, config.eval.pass_k) if trainer.eval_rows else {}
    algo = config.algorithm
    summary: dict[str, Any] = {
        "train_seconds": round(trainer.state.train_seconds, 1),
        "accuracy_before": before.get("accuracy"), "accuracy_after": after.get("accuracy"),
        "algorithm": algo.advantage if algo.selection == "none" else algo.selection, "eval_size": len(trainer.eval_rows or []),
    }
    if "accuracy_first" in before or "accuracy_first" in after:  # episodes: the first answer, beside within K tries
        summary["accuracy_first_before"], summary["accuracy_first_after"] = before.get("accuracy_first"), after.get("accuracy_first")
    if config.eval.pass_k:
        key = f"pass@{config.eval.pass_k}"
        summary[f"{key}_before"], summary[f"{key}_after"] = before.get(key), after.get(key)
    if after.get("completions"):
        summary["heldout_examples_after"] = [{"prompt": r["prompt"], "reference": r.get("reference"), "completion": c}
                                             for r, c in zip(trainer.eval_rows[:5], after["completions"][:5])]
    summary = run.finish(summary, title=f"{summary['algorithm']} seed {config.seed}")
    if summary["accuracy_after"] is not None:
        run.console.print(f"held-out accuracy: {summary['accuracy_before']:.1%} -> {summary['accuracy_after']:.1%} "
                          f"after {run.step} steps in {summary['wall_seconds']:.0f} s ({run.dir})")
    return summary


def _monitor(monitor: Any, step: int, batch: Batch, row: dict[str, Any], bar: Bar) -> None:
    """The hacking monitor's readings and warnings on this step's rollouts, into the step's row."""
    samples = [{"completion": t, "prompt": "", "meta": {"num_tokens": batch.rollouts.trained_tokens(i)}}
               for i, t in enumerate(batch.rollouts.texts)]
    report = monitor.update(step, samples, batch.outcomes, row.get("heldout_accuracy"))
    row.update({f"monitor/{k}": v for k, v in report.metrics.items()})
    row["warnings"] = report.warnings
    for warning in report.warnings:
        bar.print(f"[yellow]step {step}: {warning}[/]")


def _log_samples(run: Run, batch: Batch, shown: int, bar: Bar) -> None:
    """A few completions, with enough to rescore them offline (`payoff rescore`): the reference,
    the prompt group, the status."""
    if batch.episodes is not None:
        from payoff.rl.episode_batch import episode_samples

        samples = episode_samples(batch, run.step, shown)
    else:
        samples = [{"prompt": batch.rows[i // batch.group_size]["prompt"], "reference": batch.rows[i // batch.group_size].get("reference"),
                    "group": f"{run.step}-{i // batch.group_size}", "completion": batch.rollouts.texts[i],
                    "reward": batch.outcomes[i].score, "status": batch.outcomes[i].status} for i in range(min(shown, len(batch.outcomes)))]
    if run.metrics is not None:
        run.metrics.log_samples(run.step, samples)
    for item in samples:
        bar.print(f"[dim]step {run.step} | {item['completion'][:80]!r} -> {item['reward']}[/]")
