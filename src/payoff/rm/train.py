"""`train_reward_model()`: Bradley-Terry reward-model training, one loop read top to bottom.

It runs unchanged on one process or under ``accelerate launch`` on several (DDP): each optimiser
step takes ``optim.batch_size`` pairs in a seeded order, every process takes its share
(rank::world) in micro-batches, gradients are accumulated locally and averaged across processes
once per step. The order is a pure function of (seed, step), so resuming from a checkpoint
replays exactly the pairs an uninterrupted run would have seen.
"""

from __future__ import annotations

import contextlib
import json
import random
import resource
import time
from pathlib import Path
from typing import Any

import torch

from payoff.rl.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from payoff.rl.metrics import MetricsLog, plot_curves
from payoff.rl.optim import adamw
from payoff.rm.config import RMTrainConfig
from payoff.rm.data import Pair, read_pairs
from payoff.rm.evaluate import pair_metrics
from payoff.rm.losses import reward_model_loss
from payoff.rm.model import ModelInfo, RenderSpec, RewardModel, add_lora, collate, load_trunk, save_reward_model
from payoff.rm.scoring import encode, score_sequences

CURVES = ("loss", "accuracy", "margin_mean", "lr", "grad_norm", "heldout_accuracy")


class Encoded:
    """Pairs as token ids, with margins, tie flags and per-head bootstrap masks."""

    def __init__(self, pairs: list[Pair], tokenizer: Any, spec: RenderSpec, heads: int, bootstrap: float, seed: int,
                 use_margin: bool) -> None:
        self.chosen, cut_c = encode(tokenizer, [(p.prompt, p.chosen) for p in pairs], spec)
        self.rejected, cut_r = encode(tokenizer, [(p.prompt, p.rejected) for p in pairs], spec)
        self.truncated = sum(a or b for a, b in zip(cut_c, cut_r))
        self.margin = torch.tensor([p.margin if use_margin else 0.0 for p in pairs])
        self.tie = torch.tensor([p.tie for p in pairs])
        generator = torch.Generator().manual_seed(seed + 104729)
        self.mask = (torch.rand(len(pairs), heads, generator=generator) < bootstrap).float() if heads > 1 else torch.ones(len(pairs), 1)

    def __len__(self) -> int:
        return len(self.chosen)


def step_indices(step: int, batch_size: int, size: int, seed: int) -> list[int]:
    """The pairs of optimiser step ``step``: positions step*batch .. +batch of an endless stream of
    seeded permutations (one per epoch)."""
    out, cache = [], {}
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch = position // size
        if epoch not in cache:
            cache[epoch] = torch.randperm(size, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)).tolist()
        out.append(cache[epoch][position % size])
    return out


def held_out_split(items: list[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """(train, held out): a seeded share ``fraction`` (at least one item) held out, both kept in
    file order. The split of `payoff rm train`, `payoff dpo train` and `payoff prm train` without an
    eval file."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    cut = max(1, int(len(order) * fraction))
    return [items[i] for i in sorted(order[cut:])], [items[i] for i in sorted(order[:cut])]


def learning_rate(step: int, cfg: RMTrainConfig) -> float:
    base, warmup = cfg.optim.lr, cfg.optim.warmup_steps
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    if cfg.optim.schedule == "constant":
        return base
    remaining = max(1, cfg.steps - warmup)
    return base * max(0.0, 1 - (step - warmup) / remaining)


def evaluate_pairs(model: RewardModel, data: Encoded, pad_id: int, batch_size: int) -> dict[str, Any]:
    rewards = score_sequences(model, data.chosen + data.rejected, pad_id, batch_size)
    mean = rewards.mean(-1)
    chosen, rejected = mean[: len(data)], mean[len(data):]
    metrics = pair_metrics(chosen, rejected, [len(s) for s in data.chosen], [len(s) for s in data.rejected])
    if rewards.shape[-1] > 1:
        metrics["head_std_mean"] = rewards.std(-1, unbiased=False).mean().item()
    return metrics


def _load_data(cfg: RMTrainConfig, console: Any) -> tuple[list[Pair], list[Pair], dict[str, Any]]:
    train_pairs, train_report = read_pairs(cfg.data.train, cfg.data.fields, cfg.data.on_bad)
    reports = {"train": train_report.to_dict()}
    console.print(train_report.describe())
    if cfg.data.eval:
        eval_pairs, eval_report = read_pairs(cfg.data.eval, cfg.data.fields, cfg.data.on_bad)
        reports["eval"] = eval_report.to_dict()
        console.print(eval_report.describe())
    else:
        train_pairs, eval_pairs = held_out_split(train_pairs, cfg.data.eval_fraction, cfg.seed)
    return train_pairs[: cfg.data.train_size], eval_pairs[: cfg.data.eval_size], reports


def _build_model(cfg: RMTrainConfig) -> tuple[RewardModel, Any]:
    trunk, tokenizer = load_trunk(cfg.model.name, cfg.model.dtype)
    if cfg.model.gradient_checkpointing:
        trunk.gradient_checkpointing_enable()
    if cfg.model.lora is not None:
        trunk = add_lora(trunk, cfg.model.lora.model_dump())
    torch.manual_seed(cfg.seed)
    model = RewardModel(trunk, cfg.model.heads)
    for module in model.modules():  # dropout off, as in TRL: the two sides of a pair must see the same network
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model.train()
    return model, tokenizer


def train_reward_model(config: RMTrainConfig, resume: str | Path | None = None, console: Any = None) -> dict[str, Any]:
    """Train; returns the summary (also ``run_dir/summary.json``); the model is ``run_dir/model``."""
    from accelerate import Accelerator
    from rich.console import Console

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    main = accelerator.is_main_process
    console = console if console is not None and main else Console(stderr=True, quiet=not main)
    cfg = config
    run_dir = Path(resume) if resume else Path(cfg.run_dir)
    if resume:
        cfg = cfg.model_copy(update={"run_dir": str(run_dir)})
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    # -- data and model ---------------------------------------------------------------------------
    train_pairs, eval_pairs, reports = _load_data(cfg, console)
    model, tokenizer = _build_model(cfg)
    spec = RenderSpec(cfg.model.chat_template, cfg.model.max_length, cfg.model.truncation)
    heads, pad_id = cfg.model.heads, int(tokenizer.pad_token_id)
    train = Encoded(train_pairs, tokenizer, spec, heads, cfg.loss.bootstrap, cfg.seed, cfg.loss.use_margin)
    held = Encoded(eval_pairs, tokenizer, spec, heads, 1.0, cfg.seed, cfg.loss.use_margin)
    if train.truncated:
        console.print(f"[yellow]{train.truncated} of {len(train)} training pairs are longer than {spec.max_length} tokens: "
                      f"cut by the '{spec.truncation}' policy (kept, not dropped)[/]")
    optimizer = adamw([p for p in model.parameters() if p.requires_grad], cfg.optim.lr, cfg.optim.betas, cfg.optim.weight_decay)
    unwrapped = model
    model, optimizer = accelerator.prepare(model, optimizer)
    device, world, rank = accelerator.device, accelerator.num_processes, accelerator.process_index

    # -- resume -------------------------------------------------------------------------------------
    step, state, wall_before = 0, {}, 0.0
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, unwrapped, optimizer)
        step, wall_before = state["step"], float(state.get("wall_seconds_before_resume", 0.0))
        console.print(f"resumed from {checkpoint} (step {step})")
    elif main:
        (run_dir / "config.json").write_text(cfg.model_dump_json(indent=1))
    log = MetricsLog(run_dir, cfg.log.tensorboard and main, resume_step=step if checkpoint is not None and main else None) if main else None
    if main and checkpoint is None and (run_dir / "metrics.jsonl").exists():
        (run_dir / "metrics.jsonl").unlink()

    before = state.get("before") or evaluate_pairs(unwrapped, held, pad_id, cfg.eval_batch_size)
    console.print(f"held-out before: accuracy {before.get('accuracy') or 0:.1%} on {len(held)} pairs")

    # -- the loop -------------------------------------------------------------------------------------
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [TextColumn("[bold]rm"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
               TextColumn("acc {task.fields[acc]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    loop_started, first_step = time.perf_counter(), step
    with Progress(*columns, console=console, disable=not (cfg.log.progress and main)) as progress:
        bar = progress.add_task("rm", total=cfg.steps, completed=step, loss="-", acc="-")
        while step < cfg.steps:
            lr = learning_rate(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            mine = step_indices(step, cfg.optim.batch_size, len(train), cfg.seed)[rank::world]
            micro = [mine[i:i + cfg.optim.micro_batch] for i in range(0, len(mine), cfg.optim.micro_batch)]
            totals = torch.zeros(4)  # loss * n, correct, ties, margin sum
            for number, chunk in enumerate(micro):
                ids, mask = collate([train.chosen[i] for i in chunk] + [train.rejected[i] for i in chunk], pad_id)
                sync = number == len(micro) - 1
                with accelerator.no_sync(model) if not sync else contextlib.nullcontext():
                    rewards = model(ids.to(device), mask.to(device)).float()
                    chosen, rejected = rewards[: len(chunk)], rewards[len(chunk):]
                    margin, tie = train.margin[chunk].to(device), train.tie[chunk].to(device)
                    loss = sum(reward_model_loss(chosen[:, h], rejected[:, h], margin, tie=tie,
                                                 label_smoothing=cfg.loss.label_smoothing, center_coef=cfg.loss.center_coef,
                                                 weight=train.mask[chunk, h].to(device)) for h in range(heads)) / heads
                    accelerator.backward(loss * len(chunk) / len(mine))
                with torch.no_grad():
                    gap = (chosen - rejected).mean(-1).detach().cpu()
                    decided = ~train.tie[chunk]
                    totals += torch.tensor([loss.item() * len(chunk), ((gap > 0) & decided).sum().item(),
                                            (gap == 0).sum().item(), gap.sum().item()])
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.optim.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            totals = accelerator.reduce(totals.to(device), reduction="sum").cpu()
            n = cfg.optim.batch_size
            row = {"step": step, "loss": totals[0].item() / n, "accuracy": totals[1].item() / n, "ties": totals[2].item() / n,
                   "margin_mean": totals[3].item() / n, "lr": lr, "grad_norm": float(grad_norm)}
            if log is not None:
                log.log(row)
            progress.update(bar, completed=step, loss=f"{row['loss']:.3f}", acc=f"{row['accuracy']:.0%}")
            if cfg.checkpoint_every and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                if main:
                    wall = wall_before + time.perf_counter() - started
                    save_checkpoint(run_dir, step, unwrapped, optimizer, {"before": before, "wall_seconds_before_resume": wall},
                                    cfg.keep_checkpoints)
                accelerator.wait_for_everyone()
    loop_seconds = time.perf_counter() - loop_started

    # -- after ------------------------------------------------------------------------------------------
    after = evaluate_pairs(unwrapped, held, pad_id, cfg.eval_batch_size)
    wall = wall_before + time.perf_counter() - started
    summary: dict[str, Any] = {
        "steps": step, "seed": cfg.seed, "wall_seconds": round(wall, 1),
        "seconds_per_step": round(loop_seconds / (step - first_step), 4) if step > first_step else None,
        "accuracy_before": before.get("accuracy"), "accuracy_after": after.get("accuracy"),
        "length_correlation": after.get("length_correlation"), "tie_rate_after": after.get("tie_rate"),
        "calibration_ece_after": after.get("calibration_ece"),
        "reward_mean": after.get("reward_mean"), "reward_std": after.get("reward_std"),
        "before": before, "after": after, "train_pairs": len(train), "eval_pairs": len(held),
        "truncated_train_pairs": train.truncated, "truncated_eval_pairs": held.truncated, "data": reports,
        "processes": world, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "resumed_from": str(checkpoint) if checkpoint else None, "model": str(run_dir / "model"),
    }
    if main:
        lora = cfg.model.lora.model_dump() if cfg.model.lora is not None else None
        info = ModelInfo(cfg.model.name, heads, lora, spec, float(after.get("reward_mean") or 0.0), float(after.get("reward_std") or 1.0) or 1.0)
        save_reward_model(run_dir / "model", unwrapped, tokenizer, info)
        rows = log.rows() if log is not None else []
        if cfg.log.plot and rows:
            picture = plot_curves(rows, run_dir / "curves.png", title=f"reward model, seed {cfg.seed}", keys=CURVES)
            summary["plot"] = str(picture) if picture else None
        if log is not None:
            log.close()
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        console.print(f"held-out pairwise accuracy: {before.get('accuracy') or 0:.1%} -> {after.get('accuracy') or 0:.1%} after {step} steps "
                      f"in {wall:.0f} s; length correlation {after.get('length_correlation')}; model in {run_dir / 'model'}")
    accelerator.wait_for_everyone()
    return summary

