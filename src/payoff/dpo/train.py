"""`train_dpo()`: offline preference optimisation, one loop read top to bottom.

Before the first step, the reference's sequence log-probs of every pair the run will touch (the
schedule is a pure function of the seed and the step, as in `payoff rm train`) and of the held-out
pairs, from the policy itself while it is still the reference (under LoRA, with its adapters off):
no frozen copy is kept and no step runs the reference. Per step: micro-batches of chosen and
rejected answers, the policy's sequence log-probs with gradients, the loss, clip, fused AdamW. The
metrics are DPO's: reward accuracy (the implicit reward beta (log pi - log pi_ref) of the chosen
answer above the rejected one's), margins, and the chosen and rejected log-probs.
"""

from __future__ import annotations

import contextlib
import json
import random
import resource
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from payoff.dpo.config import DPOConfig
from payoff.dpo.losses import preference_loss
from payoff.rl.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from payoff.rl.logprobs import pack, token_logprobs
from payoff.rl.metrics import MetricsLog, plot_curves
from payoff.rl.optim import adamw
from payoff.rm.data import Pair, read_pairs
from payoff.rm.model import RenderSpec, render
from payoff.rm.train import held_out_split, learning_rate, step_indices

CURVES = ("loss", "reward_accuracy", "reward_margin", "logp_chosen", "logp_rejected", "grad_norm")


class Encoded:
    """Each pair as (prompt ids, chosen ids, rejected ids), cut to max_length prompt-first."""

    def __init__(self, pairs: list[Pair], tokenizer: Any, spec: RenderSpec) -> None:
        self.prompt, self.chosen, self.rejected = [], [], []
        self.truncated = 0
        for pair in pairs:
            p_ids, c_ids = render(tokenizer, pair.prompt, pair.chosen, spec)
            _, r_ids = render(tokenizer, pair.prompt, pair.rejected, spec)
            keep = max(1, spec.max_length - max(len(c_ids), len(r_ids)))
            cut = len(p_ids) > keep or len(c_ids) >= spec.max_length or len(r_ids) >= spec.max_length
            self.truncated += cut
            prompt = p_ids[-keep:] if p_ids else [int(tokenizer.eos_token_id)]
            self.prompt.append(prompt)
            self.chosen.append(c_ids[: spec.max_length - 1] or [int(tokenizer.eos_token_id)])
            self.rejected.append(r_ids[: spec.max_length - 1] or [int(tokenizer.eos_token_id)])
        self.ref: dict[int, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self.prompt)


def _sequence_logps(model: Any, data: Encoded, indices: list[int], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed log-probs of the chosen and the rejected answers of ``indices`` (one forward pass
    over both) and their token counts."""
    prompts = [data.prompt[i] for i in indices] * 2
    answers = [data.chosen[i] for i in indices] + [data.rejected[i] for i in indices]
    batch = pack(prompts, answers, pad_id)
    logp, _ = token_logprobs(model, batch)
    sums = logp.sum(-1)
    lengths = batch.completion_mask.sum(-1)
    n = len(indices)
    return sums[:n], sums[n:], lengths[:n], lengths[n:]


@torch.no_grad()
def cache_reference(policy: Any, data: Encoded, indices: Iterable[int], pad_id: int, micro: int, longest_first: bool = True) -> None:
    """Store the reference's summed log-probs of the answers of ``indices`` in ``data.ref``.

    Called before the first optimiser step, while the policy still is the reference (under LoRA,
    the same model with its adapters off), so no frozen copy of the model is kept: a full
    fine-tune holds one model less in memory, and no step spends time on reference forwards (TRL's
    ``precompute_ref_log_probs``). ``longest_first`` sorts them so each micro-batch pads little;
    without it they go in the order and the batches `pair_metrics` uses, so the held-out margins
    before training are exactly 0 rather than a rounding apart (a matrix product's rounding
    depends on the batch it is in)."""
    missing = list(dict.fromkeys(i for i in indices if i not in data.ref))
    if longest_first:
        missing.sort(key=lambda i: -(len(data.prompt[i]) + max(len(data.chosen[i]), len(data.rejected[i]))))
    if not missing:
        return
    with policy.reference() if policy.lora else contextlib.nullcontext(policy.model) as reference:
        was = reference.training
        reference.eval()
        for start in range(0, len(missing), micro):
            chunk = missing[start:start + micro]
            w, r, _, _ = _sequence_logps(reference, data, chunk, pad_id)
            for i, a, b in zip(chunk, w.tolist(), r.tolist()):
                data.ref[i] = (a, b)
        reference.train(was)


def reference_logps(data: Encoded, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The cached reference log-probs (chosen, rejected) of ``indices``."""
    missing = [i for i in indices if i not in data.ref]
    if missing:
        raise RuntimeError(f"reference log-probs of pairs {missing[:5]} were not computed before training")
    return torch.tensor([data.ref[i][0] for i in indices]), torch.tensor([data.ref[i][1] for i in indices])


def touched_pairs(steps: int, batch_size: int, size: int, seed: int) -> list[int]:
    """Every pair a run of ``steps`` steps trains on: positions 0 .. steps*batch of the stream
    `step_indices` reads (all pairs once the run reaches a second epoch)."""
    if steps * batch_size >= size:
        return list(range(size))
    return step_indices(0, steps * batch_size, size, seed)


@torch.no_grad()
def pair_metrics(policy: Any, data: Encoded, beta: float, pad_id: int, micro: int) -> dict[str, Any]:
    """Held-out: reward accuracy (ties lose), mean margin, mean log-probs."""
    if not len(data):
        return {}
    was = policy.model.training
    policy.model.eval()
    wins, margins, chosen, rejected = [], [], [], []
    for start in range(0, len(data), micro):
        chunk = list(range(start, min(len(data), start + micro)))
        pi_w, pi_l, _, _ = _sequence_logps(policy.model, data, chunk, pad_id)
        ref_w, ref_l = reference_logps(data, chunk)
        margin = beta * ((pi_w - ref_w) - (pi_l - ref_l))
        wins += (margin > 0).float().tolist()
        margins += margin.tolist()
        chosen += pi_w.tolist()
        rejected += pi_l.tolist()
    policy.model.train(was)
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    return {"reward_accuracy": mean(wins), "reward_margin": mean(margins), "logp_chosen": mean(chosen), "logp_rejected": mean(rejected),
            "pairs": len(data)}


def _greedy_accuracy(cfg: DPOConfig, policy: Any) -> float | None:
    if cfg.eval.task == "none":
        return None
    from payoff.engine import Engine
    from payoff.registry import get_reward
    from payoff.rl.heldout import heldout_accuracy
    from payoff.rl.rollout import HFGenerator, SamplingParams, render_prompt
    from payoff.rl.scoring import EngineScoring
    from payoff.tasks.loader import task_rows

    rows = task_rows(cfg.eval.task, cfg.eval.size, cfg.eval.seed, **dict(cfg.eval.options))
    generator = HFGenerator(policy.model, policy.tokenizer, batch_size=32)
    prompts = [render_prompt(policy.tokenizer, row["prompt"], cfg.model.chat_template) for row in rows]
    with Engine(get_reward(cfg.eval.reward), workers=1) as engine:
        result = heldout_accuracy(generator, EngineScoring(engine), rows, prompts, SamplingParams(max_new_tokens=cfg.eval.max_new_tokens),
                                  None, 1.0)
    return result["accuracy"]


def train_dpo(config: DPOConfig, resume: str | Path | None = None, console: Any = None, model: Any = None, tokenizer: Any = None) -> dict[str, Any]:
    """Train; returns the summary (also ``run_dir/summary.json``); the policy is ``run_dir/model``."""
    from rich.console import Console

    from payoff.rl.config import ModelConfig
    from payoff.rl.policy import load_training_policy

    console = console or Console(stderr=True)
    cfg = config
    run_dir = Path(resume) if resume else Path(cfg.run_dir)
    if resume:
        cfg = cfg.model_copy(update={"run_dir": str(run_dir)})
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    # -- data, policy and its reference ------------------------------------------------------------
    train_pairs, report = read_pairs(cfg.data.train, cfg.data.fields, cfg.data.on_bad)
    console.print(report.describe())
    reports = {"train": report.to_dict()}
    if cfg.data.eval:
        eval_pairs, eval_report = read_pairs(cfg.data.eval, cfg.data.fields, cfg.data.on_bad)
        reports["eval"] = eval_report.to_dict()
    else:
        train_pairs, eval_pairs = held_out_split(train_pairs, cfg.data.eval_fraction, cfg.seed)
    train_pairs, eval_pairs = train_pairs[: cfg.data.train_size], eval_pairs[: cfg.data.eval_size]
    model_config = ModelConfig(name=cfg.model.name, lora=cfg.model.lora, chat_template=cfg.model.chat_template,
                               gradient_checkpointing=cfg.model.gradient_checkpointing)
    needs_reference = cfg.algorithm.loss != "simpo"
    policy = load_training_policy(model_config, keep_reference=False, model=model, tokenizer=tokenizer)
    for module in policy.model.modules():  # no dropout: the two answers of a pair must see the same network
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    spec = RenderSpec(cfg.model.chat_template, cfg.model.max_length, "prompt_left")
    pad_id = policy.pad_id
    train, held = Encoded(train_pairs, policy.tokenizer, spec), Encoded(eval_pairs, policy.tokenizer, spec)
    if train.truncated:
        console.print(f"[yellow]{train.truncated} of {len(train)} training pairs cut to {spec.max_length} tokens (prompt first; kept)[/]")
    beta, micro = cfg.algorithm.beta, cfg.optim.micro_batch
    if needs_reference:  # before the checkpoint loads: the reference is the base model
        cache_reference(policy, train, touched_pairs(cfg.steps, cfg.optim.batch_size, len(train), cfg.seed), pad_id, micro)
        cache_reference(policy, held, range(len(held)), pad_id, micro, longest_first=False)
    optimizer = adamw(policy.trainable(), cfg.optim.lr, cfg.optim.betas, cfg.optim.weight_decay)

    # -- resume ------------------------------------------------------------------------------------
    step, state, wall_before = 0, {}, 0.0
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, policy.model, optimizer)
        step, wall_before = state["step"], float(state.get("wall_seconds_before_resume", 0.0))
        console.print(f"resumed from {checkpoint} (step {step})")
    else:
        (run_dir / "config.json").write_text(cfg.model_dump_json(indent=1))
        if (run_dir / "metrics.jsonl").exists():
            (run_dir / "metrics.jsonl").unlink()
    log = MetricsLog(run_dir, cfg.log.tensorboard, resume_step=step if checkpoint is not None else None)
    if "before" in state:
        before = state["before"]
    else:
        before = pair_metrics(policy, held, beta, pad_id, micro) if needs_reference else {}
        before["greedy_accuracy"] = _greedy_accuracy(cfg, policy)
    console.print(f"held-out before: reward accuracy {before.get('reward_accuracy')}, greedy accuracy {before.get('greedy_accuracy')}")

    # -- the loop ------------------------------------------------------------------------------------
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    loop_started, first_step = time.perf_counter(), step
    columns = [TextColumn("[bold]dpo"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
               TextColumn("acc {task.fields[acc]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=not cfg.log.progress) as progress:
        bar = progress.add_task("dpo", total=cfg.steps, completed=step, loss="-", acc="-")
        while step < cfg.steps:
            lr = learning_rate(step, cfg)  # type: ignore[arg-type]  # same schedule fields as the RM config
            for group in optimizer.param_groups:
                group["lr"] = lr
            indices = step_indices(step, cfg.optim.batch_size, len(train), cfg.seed)
            totals = torch.zeros(5)  # loss, wins, margin, logp chosen, logp rejected (sums)
            for start in range(0, len(indices), micro):
                chunk = indices[start:start + micro]
                if needs_reference:
                    ref_w, ref_l = reference_logps(train, chunk)
                pi_w, pi_l, len_w, len_l = _sequence_logps(policy.model, train, chunk, pad_id)
                if not needs_reference:
                    ref_w, ref_l = torch.zeros_like(pi_w), torch.zeros_like(pi_l)
                loss = preference_loss(cfg.algorithm.loss, pi_w, pi_l, ref_w, ref_l, len_w, len_l, beta=beta,
                                       label_smoothing=cfg.algorithm.label_smoothing, gamma=cfg.algorithm.gamma, alpha=cfg.algorithm.alpha)
                (loss.sum() / len(indices)).backward()
                with torch.no_grad():
                    margin = beta * ((pi_w - ref_w) - (pi_l - ref_l))
                    totals += torch.tensor([loss.sum().item(), (margin > 0).sum().item(), margin.sum().item(),
                                            pi_w.sum().item(), pi_l.sum().item()])
            grad_norm = torch.nn.utils.clip_grad_norm_(policy.trainable(), cfg.optim.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            n = len(indices)
            row = {"step": step, "loss": totals[0].item() / n, "reward_accuracy": totals[1].item() / n, "reward_margin": totals[2].item() / n,
                   "logp_chosen": totals[3].item() / n, "logp_rejected": totals[4].item() / n, "lr": lr, "grad_norm": float(grad_norm)}
            log.log(row)
            progress.update(bar, completed=step, loss=f"{row['loss']:.3f}", acc=f"{row['reward_accuracy']:.0%}")
            if cfg.checkpoint_every and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                save_checkpoint(run_dir, step, policy.model, optimizer, {"before": before, "wall_seconds_before_resume":
                                                                          wall_before + time.perf_counter() - started}, cfg.keep_checkpoints)
    loop_seconds = time.perf_counter() - loop_started

    # -- after -------------------------------------------------------------------------------------
    after = pair_metrics(policy, held, beta, pad_id, micro) if needs_reference else {}
    after["greedy_accuracy"] = _greedy_accuracy(cfg, policy)
    _save_policy(run_dir / "model", policy, cfg)
    wall = wall_before + time.perf_counter() - started
    summary = {"steps": step, "seed": cfg.seed, "wall_seconds": round(wall, 1), "loss": cfg.algorithm.loss, "beta": beta,
               "seconds_per_step": round(loop_seconds / (step - first_step), 4) if step > first_step else None,
               "reward_accuracy_before": before.get("reward_accuracy"), "reward_accuracy_after": after.get("reward_accuracy"),
               "greedy_accuracy_before": before.get("greedy_accuracy"), "greedy_accuracy_after": after.get("greedy_accuracy"),
               "before": before, "after": after, "train_pairs": len(train), "eval_pairs": len(held), "truncated_train_pairs": train.truncated,
               "data": reports, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
               "resumed_from": str(checkpoint) if checkpoint else None, "model": str(run_dir / "model")}
    rows = log.rows()
    if cfg.log.plot and rows:
        picture = plot_curves(rows, run_dir / "curves.png", title=f"{cfg.algorithm.loss}, beta {beta}, seed {cfg.seed}", keys=CURVES)
        summary["plot"] = str(picture) if picture else None
    log.close()
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    console.print(f"held-out reward accuracy {before.get('reward_accuracy')} -> {after.get('reward_accuracy')}; greedy accuracy "
                  f"{before.get('greedy_accuracy')} -> {after.get('greedy_accuracy')}; {step} steps in {wall:.0f} s ({run_dir})")
    return summary


def _save_policy(folder: Path, policy: Any, cfg: DPOConfig) -> None:
    """The trained policy (its LoRA adapter, or the whole model) and tokenizer, written atomically,
    with dpo.json naming the base (the reference of implicit rewards) and beta."""
    import shutil

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    policy.model.save_pretrained(partial)
    policy.tokenizer.save_pretrained(partial)
    (partial / "dpo.json").write_text(json.dumps({"base": cfg.model.name, "lora": cfg.model.lora is not None, "beta": cfg.algorithm.beta,
                                                  "chat_template": cfg.model.chat_template, "loss": cfg.algorithm.loss}, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
