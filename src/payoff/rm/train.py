"""`train_reward_model()`: Bradley-Terry reward-model training, one loop read top to bottom.

It runs unchanged on one process or under ``accelerate launch`` on several (`payoff.runs.processes`):
each optimiser step takes ``optim.batch_size`` pairs in the run's seeded order
(`payoff.runs.data.step_indices`), every process takes its share in micro-batches (longest pairs
first, under ``optim.micro_tokens`` padded tokens; each pair's shared prefix computed once for
both answers: `payoff.rm.pairwise`), gradients are accumulated locally and averaged across
processes once per step. The run folder, resume,
metrics, progress and summary are `payoff.runs.run.Run`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from payoff.heap import bounded_kernel_cache
from payoff.models.attention import cpu_attention
from payoff.models.embedding_rows import fold_rows, train_used_rows
from payoff.models.precision import autocast
from payoff.models.reward_model import ModelInfo, RenderSpec, RewardModel, add_lora, load_trunk, round_up, save_reward_model
from payoff.rm.config import RMTrainConfig
from payoff.rm.heldout import pair_metrics
from payoff.rm.losses import reward_model_loss
from payoff.rm.pairwise import PairBatch, PairRewardModel, shared_length
from payoff.rm.scoring import encode, score_sequences
from payoff.runs.data import load_split
from payoff.runs.memory import token_chunks
from payoff.runs.optim import adamw, dropout_off
from payoff.runs.processes import Processes
from payoff.runs.run import Run
from payoff.tasks.preferences import Pair, read_pairs

CURVES = ("loss", "accuracy", "margin_mean", "lr", "grad_norm", "heldout_accuracy")


class Encoded:
    """Pairs as token ids, with margins, tie flags and per-head bootstrap masks."""

    def __init__(self, pairs: list[Pair], tokenizer: Any, spec: RenderSpec, heads: int, bootstrap: float, seed: int,
                 use_margin: bool, share_prefix: bool = True) -> None:
        self.chosen, cut_c = encode(tokenizer, [(p.prompt, p.chosen) for p in pairs], spec)
        self.rejected, cut_r = encode(tokenizer, [(p.prompt, p.rejected) for p in pairs], spec)
        self.truncated = sum(a or b for a, b in zip(cut_c, cut_r))
        self.margin = torch.tensor([p.margin if use_margin else 0.0 for p in pairs])
        self.tie = torch.tensor([p.tie for p in pairs])
        generator = torch.Generator().manual_seed(seed + 104729)
        self.mask = (torch.rand(len(pairs), heads, generator=generator) < bootstrap).float() if heads > 1 else torch.ones(len(pairs), 1)
        # 0 where prefixes are not shared: each pair is then two whole sequences (`PairBatch`)
        self.shared = [shared_length(c, r) if share_prefix else 0 for c, r in zip(self.chosen, self.rejected)]

    def __len__(self) -> int:
        return len(self.chosen)

    def padded_tokens(self, chunk: list[int], multiple: int = 1) -> int:
        """The tokens `PairBatch` pads ``chunk`` to: the prefixes once, then both answers, each
        part's width rounded up to a ``multiple``."""
        if min(self.shared[i] for i in chunk) == 0:
            return 2 * len(chunk) * round_up(max(max(len(self.chosen[i]), len(self.rejected[i])) for i in chunk), multiple)
        answer = max(max(len(self.chosen[i]), len(self.rejected[i])) - self.shared[i] for i in chunk)
        return len(chunk) * (round_up(max(self.shared[i] for i in chunk), multiple) + 2 * round_up(answer, multiple))

    def micro_batches(self, indices: list[int], rows: int, tokens: int, multiple: int = 1) -> list[list[int]]:
        """``indices`` longest first in micro-batches of at most ``rows`` pairs and ``tokens``
        padded tokens (0: no bound): sorted pairs pad little, and the memory of a forward pass
        has a bound whichever pairs a step draws. A pair whose answers share no prefix (``prompt_left``
        cuts the prompts of a long pair's two sides by different amounts) would send its whole
        micro-batch down the two-whole-sequences path, so such pairs go in micro-batches of their own."""
        width = lambda i: max(len(self.chosen[i]), len(self.rejected[i]))  # noqa: E731
        sharing = [i for i in indices if self.shared[i] > 0]
        apart = [i for i in indices if self.shared[i] == 0]
        padded = lambda chunk: self.padded_tokens(chunk, multiple)  # noqa: E731
        return [*token_chunks(sharing, width, rows, tokens, padded=padded), *token_chunks(apart, width, rows, tokens, padded=padded)]


def evaluate_pairs(model: RewardModel, data: Encoded, pad_id: int, batch_size: int) -> dict[str, Any]:
    rewards = score_sequences(model, data.chosen + data.rejected, pad_id, batch_size)
    mean = rewards.mean(-1)
    chosen, rejected = mean[: len(data)], mean[len(data):]
    metrics = pair_metrics(chosen, rejected, [len(s) for s in data.chosen], [len(s) for s in data.rejected])
    if rewards.shape[-1] > 1:
        metrics["head_std_mean"] = rewards.std(-1, unbiased=False).mean().item()
    return metrics


def train_reward_model(config: RMTrainConfig, resume: str | Path | None = None, console: Any = None) -> dict[str, Any]:
    """Train; returns the summary (also ``run_dir/summary.json``); the model is ``run_dir/model``."""
    bounded_kernel_cache()  # before the first bf16 product: a smaller heap (payoff.heap)
    run = Run(config, resume, console, Processes())
    cfg, console, processes = run.config, run.console, run.processes

    # -- data and model ---------------------------------------------------------------------------
    train_pairs, eval_pairs, reports = load_split(cfg.data, lambda path: read_pairs(path, cfg.data.fields, cfg.data.on_bad),
                                                  cfg.seed, console)
    trunk, tokenizer = load_trunk(cfg.model.name, cfg.model.dtype)
    if cfg.model.attention == "plain":
        cpu_attention(trunk)
    if cfg.model.gradient_checkpointing:
        trunk.gradient_checkpointing_enable()
    if cfg.model.lora is not None:
        trunk = add_lora(trunk, cfg.model.lora.model_dump())
    torch.manual_seed(cfg.seed)
    unwrapped = PairRewardModel(trunk, cfg.model.heads)
    dropout_off(unwrapped)
    unwrapped.train()
    spec = RenderSpec(cfg.model.chat_template, cfg.model.max_length, cfg.model.truncation)
    heads, pad_id = cfg.model.heads, int(tokenizer.pad_token_id)
    # a pair's shared prefix runs once, its key/value cache under both answers, except under gradient
    # checkpointing: transformers drops the cache from checkpointed layers, so pairs are whole sequences
    share = not cfg.model.gradient_checkpointing
    train = Encoded(train_pairs, tokenizer, spec, heads, cfg.loss.bootstrap, cfg.seed, cfg.loss.use_margin, share)
    held = Encoded(eval_pairs, tokenizer, spec, heads, 1.0, cfg.seed, cfg.loss.use_margin)
    if train.truncated:
        console.print(f"[yellow]{train.truncated} of {len(train)} training pairs are longer than {spec.max_length} tokens: "
                      f"cut by the '{spec.truncation}' policy (kept, not dropped)[/]")
    # only the embedding rows the loop looks up train (the same updates: payoff.models.embedding_rows)
    used = {t for side in (train.chosen, train.rejected) for ids in side for t in ids} | {pad_id}  # a set: no list of every token
    embedding_rows = train_used_rows(unwrapped.trunk, used, cfg.optim.weight_decay)
    optimizer = adamw([p for p in unwrapped.parameters() if p.requires_grad], cfg.optim.lr, cfg.optim.betas, cfg.optim.weight_decay)
    model, optimizer = processes.prepare(unwrapped, optimizer)
    state = run.resume(unwrapped, optimizer)
    with autocast(cfg.precision):
        before = state.get("before") or evaluate_pairs(unwrapped, held, pad_id, cfg.eval_batch_size)
    console.print(f"held-out before: accuracy {before.get('accuracy') or 0:.1%} on {len(held)} pairs")

    # -- the loop -------------------------------------------------------------------------------------
    # large blocks held too: they are the gradients (the embedding's is 113 MB), the same every step
    with run.progress("rm", large_blocks=True, loss="-", acc="-") as bar:
        for lr, mine, _ in run.batches(optimizer, len(train)):
            totals = torch.zeros(4)  # loss * n, correct, ties, margin sum
            micro = train.micro_batches(mine, cfg.optim.micro_batch, cfg.optim.micro_tokens, cfg.optim.pad_to_multiple_of)
            # one autocast context a step: bf16 copies of the weights are made once, not once per micro-batch
            with autocast(cfg.precision):
                for number, chunk in enumerate(micro):
                    batch = PairBatch([train.chosen[i] for i in chunk], [train.rejected[i] for i in chunk], pad_id,
                                      cfg.optim.pad_to_multiple_of, [train.shared[i] for i in chunk])
                    with processes.accumulate(model, last=number == len(micro) - 1):
                        rewards = model(batch.to(processes.device)).float()
                        chosen, rejected = rewards[: len(chunk)], rewards[len(chunk):]
                        margin, tie = train.margin[chunk].to(processes.device), train.tie[chunk].to(processes.device)
                        loss = sum(reward_model_loss(chosen[:, h], rejected[:, h], margin, tie=tie,
                                                     label_smoothing=cfg.loss.label_smoothing, center_coef=cfg.loss.center_coef,
                                                     weight=train.mask[chunk, h].to(processes.device)) for h in range(heads)) / heads
                        processes.backward(loss * len(chunk) / len(mine))
                    with torch.no_grad():
                        gap = (chosen - rejected).mean(-1).detach().cpu()
                        decided = ~train.tie[chunk]
                        totals += torch.tensor([loss.item() * len(chunk), ((gap > 0) & decided).sum().item(),
                                                (gap == 0).sum().item(), gap.sum().item()])
            grad_norm = processes.step(model, optimizer, cfg.optim.max_grad_norm)
            totals, n = processes.sum(totals), cfg.optim.batch_size
            row = {"loss": totals[0].item() / n, "accuracy": totals[1].item() / n, "ties": totals[2].item() / n,
                   "margin_mean": totals[3].item() / n, "lr": lr, "grad_norm": grad_norm}
            run.end_step(row, unwrapped, optimizer, {"before": before})
            bar.update(run.step, loss=f"{row['loss']:.3f}", acc=f"{row['accuracy']:.0%}")

    # -- after ------------------------------------------------------------------------------------------
    fold_rows(unwrapped.trunk)
    with autocast(cfg.precision):
        after = evaluate_pairs(unwrapped, held, pad_id, cfg.eval_batch_size)
    if run.main:
        lora = cfg.model.lora.model_dump() if cfg.model.lora is not None else None
        info = ModelInfo(cfg.model.name, heads, lora, spec, float(after.get("reward_mean") or 0.0), float(after.get("reward_std") or 1.0) or 1.0)
        save_reward_model(run.dir / "model", unwrapped, tokenizer, info)
    summary = run.finish({
        "accuracy_before": before.get("accuracy"), "accuracy_after": after.get("accuracy"),
        "length_correlation": after.get("length_correlation"), "tie_rate_after": after.get("tie_rate"),
        "calibration_ece_after": after.get("calibration_ece"),
        "reward_mean": after.get("reward_mean"), "reward_std": after.get("reward_std"),
        "before": before, "after": after, "train_pairs": len(train), "eval_pairs": len(held),
        "truncated_train_pairs": train.truncated, "truncated_eval_pairs": held.truncated, "data": reports,
        "embedding_rows_trained": embedding_rows, "model": str(run.dir / "model"),
    }, CURVES, title=f"reward model, seed {cfg.seed}")
    console.print(f"held-out pairwise accuracy: {before.get('accuracy') or 0:.1%} -> {after.get('accuracy') or 0:.1%} after {run.step} steps "
                  f"in {summary['wall_seconds']:.0f} s; length correlation {after.get('length_correlation')}; model in {run.dir / 'model'}")
    return summary
