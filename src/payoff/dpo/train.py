"""`train_dpo()`: offline preference optimisation, one loop read top to bottom.

Before the first step, the reference's sequence log-probs of every pair the run will touch (the
run's order is a pure function of the seed and the step: `payoff.runs.data`) and of the held-out
pairs, from the policy itself while it is still the reference (under LoRA, with its adapters off):
no frozen copy is kept and no step runs the reference. Per step: micro-batches of chosen and
rejected answers, the policy's sequence log-probs with gradients, the loss, clip, fused AdamW. The
metrics are DPO's: reward accuracy (the implicit reward beta (log pi - log pi_ref) of the chosen
answer above the rejected one's), margins, and the chosen and rejected log-probs. The run folder,
resume, metrics, progress, summary and several processes are the run harness's (`payoff.runs`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from payoff.dpo.config import DPOConfig
from payoff.dpo.losses import preference_loss
from payoff.heap import release
from payoff.models.logprobs import pack, token_logprobs
from payoff.models.policy import load_training_policy
from payoff.models.precision import autocast
from payoff.models.reward_model import RenderSpec, render
from payoff.runs.data import load_split, touched
from payoff.runs.memory import token_chunks
from payoff.runs.optim import adamw, dropout_off
from payoff.runs.processes import Processes
from payoff.runs.run import Run
from payoff.tasks.preferences import Pair, read_pairs

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
    batch = pack(prompts, answers, pad_id).to(next(model.parameters()).device)
    logp, _ = token_logprobs(model, batch)
    sums = logp.sum(-1)
    lengths = batch.completion_mask.sum(-1)
    n = len(indices)
    return sums[:n], sums[n:], lengths[:n], lengths[n:]


def micro_batches(data: Encoded, indices: Iterable[int], rows: int, tokens: int) -> list[list[int]]:
    """``indices`` longest first in micro-batches of at most ``rows`` pairs and ``tokens`` padded
    tokens as `_sequence_logps` lays them out (0: no bound): 2 rows per pair, each as wide as the
    micro-batch's longest prompt plus its longest answer, which bounds every tensor the forward
    makes (its logits cover the answer columns only). So the forward pass's memory is bounded
    whichever pairs a step draws (`payoff.runs.memory`), and sorted pairs pad little."""
    width = lambda i: len(data.prompt[i]) + max(len(data.chosen[i]), len(data.rejected[i]))  # noqa: E731

    def padded(chunk: list[int]) -> int:
        answer = max(max(len(data.chosen[i]), len(data.rejected[i])) for i in chunk)
        return 2 * len(chunk) * (max(len(data.prompt[i]) for i in chunk) + answer)

    return token_chunks(list(indices), width, rows, tokens, padded=padded)


@torch.no_grad()
def cache_reference(policy: Any, data: Encoded, indices: Iterable[int], pad_id: int, micro: int, tokens: int = 0) -> None:
    """Store the reference's summed log-probs of the answers of ``indices`` in ``data.ref``.

    Called before the first optimiser step, while the policy still is the reference (under LoRA,
    the same model with its adapters off), so no frozen copy of the model is kept: a full
    fine-tune holds one model less in memory, and no step spends time on reference forwards (TRL's
    ``precompute_ref_log_probs``). The micro-batches are `micro_batches`', the ones
    `implicit_reward_metrics` uses for the same pairs, so the held-out margins before training are
    exactly 0 rather than a rounding apart (a matrix product's rounding depends on the batch it is
    in)."""
    missing = list(dict.fromkeys(i for i in indices if i not in data.ref))
    if not missing:
        return
    with policy.reference() if policy.lora else contextlib.nullcontext(policy.model) as reference:
        was = reference.training
        reference.eval()
        for chunk in micro_batches(data, missing, micro, tokens):
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


@torch.no_grad()
def implicit_reward_metrics(policy: Any, data: Encoded, beta: float, pad_id: int, micro: int, tokens: int = 0) -> dict[str, Any]:
    """Held-out: reward accuracy (ties lose), mean margin, mean log-probs."""
    if not len(data):
        return {}
    was = policy.model.training
    policy.model.eval()
    wins, margins, chosen, rejected = [], [], [], []
    for chunk in micro_batches(data, range(len(data)), micro, tokens):
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


def greedy_accuracy(cfg: DPOConfig, policy: Any) -> float | None:
    """The share of ``[eval]``'s task the policy answers right greedily (the reward at 1 or more)."""
    if cfg.eval.task == "none":
        return None
    from payoff.core import Sample
    from payoff.engine import Engine
    from payoff.models.rollout import HFGenerator, SamplingParams, render_prompt
    from payoff.registry import get_reward
    from payoff.tasks.loader import task_rows

    rows = task_rows(cfg.eval.task, cfg.eval.size, cfg.eval.seed, **dict(cfg.eval.options))
    prompts = [render_prompt(policy.tokenizer, row["prompt"], cfg.model.chat_template) for row in rows]
    answers = HFGenerator(policy.model, policy.tokenizer, batch_size=32).generate(prompts, SamplingParams(cfg.eval.max_new_tokens), greedy=True)
    samples = [Sample(text, row["prompt"], row.get("reference"), dict(row.get("meta") or {})) for text, row in zip(answers.texts, rows)]
    with Engine(get_reward(cfg.eval.reward), workers=1) as engine:
        outcomes = engine.score(samples)
    return sum(o.score is not None and o.score >= 1.0 for o in outcomes) / len(rows)


def train_dpo(config: DPOConfig, resume: str | Path | None = None, console: Any = None, model: Any = None, tokenizer: Any = None) -> dict[str, Any]:
    """Train; returns the summary (also ``run_dir/summary.json``); the policy is ``run_dir/model``."""
    run = Run(config, resume, console, Processes())
    cfg, console, processes = run.config, run.console, run.processes

    # -- data, policy and its reference ------------------------------------------------------------
    train_pairs, eval_pairs, reports = load_split(cfg.data, lambda path: read_pairs(path, cfg.data.fields, cfg.data.on_bad),
                                                  cfg.seed, console)
    needs_reference = cfg.algorithm.loss != "simpo"
    policy = load_training_policy(cfg.model, keep_reference=False, model=model, tokenizer=tokenizer)
    dropout_off(policy.model)
    spec = RenderSpec(cfg.model.chat_template, cfg.model.max_length, "prompt_left")
    pad_id = policy.pad_id
    train, held = Encoded(train_pairs, policy.tokenizer, spec), Encoded(eval_pairs, policy.tokenizer, spec)
    if train.truncated:
        console.print(f"[yellow]{train.truncated} of {len(train)} training pairs cut to {spec.max_length} tokens (prompt first; kept)[/]")
    beta, micro, tokens = cfg.algorithm.beta, cfg.optim.micro_batch, cfg.optim.micro_tokens
    with autocast(cfg.precision):
        if needs_reference:  # before the checkpoint loads: the reference is the base model
            cache_reference(policy, train, touched(cfg.steps, cfg.optim.batch_size, len(train), cfg.seed), pad_id, micro, tokens)
            cache_reference(policy, held, range(len(held)), pad_id, cfg.eval_batch_size, tokens)
        release()
    optimizer = adamw(policy.trainable(), cfg.optim.lr, cfg.optim.betas, cfg.optim.weight_decay)
    model, optimizer = processes.prepare(policy.model, optimizer)
    state = run.resume(policy.model, optimizer)
    if "before" in state:
        before = state["before"]
    else:
        with autocast(cfg.precision):
            before = implicit_reward_metrics(policy, held, beta, pad_id, cfg.eval_batch_size, tokens) if needs_reference else {}
            before["greedy_accuracy"] = greedy_accuracy(cfg, policy)
        release()
    console.print(f"held-out before: reward accuracy {before.get('reward_accuracy')}, greedy accuracy {before.get('greedy_accuracy')}")

    # -- the loop ------------------------------------------------------------------------------------
    with run.progress("dpo", loss="-", acc="-") as bar:
        for lr, mine, _ in run.batches(optimizer, len(train)):
            totals = torch.zeros(5)  # loss, wins, margin, logp chosen, logp rejected (sums)
            chunks = micro_batches(train, mine, micro, tokens)
            # one autocast context a step: bf16 copies of the weights are made once, not once per micro-batch
            with autocast(cfg.precision):
                for number, chunk in enumerate(chunks):
                    with processes.accumulate(model, last=number == len(chunks) - 1):
                        pi_w, pi_l, len_w, len_l = _sequence_logps(model, train, chunk, pad_id)
                        if needs_reference:
                            ref_w, ref_l = (t.to(pi_w.device) for t in reference_logps(train, chunk))
                        else:
                            ref_w, ref_l = torch.zeros_like(pi_w), torch.zeros_like(pi_l)
                        loss = preference_loss(cfg.algorithm.loss, pi_w, pi_l, ref_w, ref_l, len_w, len_l, beta=beta,
                                               label_smoothing=cfg.algorithm.label_smoothing, gamma=cfg.algorithm.gamma, alpha=cfg.algorithm.alpha)
                        processes.backward(loss.sum() / len(mine))
                    with torch.no_grad():
                        margin = beta * ((pi_w - ref_w) - (pi_l - ref_l))
                        totals += torch.tensor([loss.sum().item(), (margin > 0).sum().item(), margin.sum().item(),
                                                pi_w.sum().item(), pi_l.sum().item()])
            grad_norm = processes.step(model, optimizer, cfg.optim.max_grad_norm)
            totals, n = processes.sum(totals), cfg.optim.batch_size
            row = {"loss": totals[0].item() / n, "reward_accuracy": totals[1].item() / n, "reward_margin": totals[2].item() / n,
                   "logp_chosen": totals[3].item() / n, "logp_rejected": totals[4].item() / n, "lr": lr, "grad_norm": grad_norm}
            run.end_step(row, policy.model, optimizer, {"before": before})
            bar.update(run.step, loss=f"{row['loss']:.3f}", acc=f"{row['reward_accuracy']:.0%}")

    # -- after -------------------------------------------------------------------------------------
    with autocast(cfg.precision):
        after = implicit_reward_metrics(policy, held, beta, pad_id, cfg.eval_batch_size, tokens) if needs_reference else {}
        after["greedy_accuracy"] = greedy_accuracy(cfg, policy)
    if run.main:
        _save_policy(run.dir / "model", policy, cfg)
    summary = run.finish({"loss": cfg.algorithm.loss, "beta": beta,
                          "reward_accuracy_before": before.get("reward_accuracy"), "reward_accuracy_after": after.get("reward_accuracy"),
                          "greedy_accuracy_before": before.get("greedy_accuracy"), "greedy_accuracy_after": after.get("greedy_accuracy"),
                          "before": before, "after": after, "train_pairs": len(train), "eval_pairs": len(held),
                          "truncated_train_pairs": train.truncated, "data": reports, "model": str(run.dir / "model")},
                         CURVES, title=f"{cfg.algorithm.loss}, beta {beta}, seed {cfg.seed}")
    console.print(f"held-out reward accuracy {before.get('reward_accuracy')} -> {after.get('reward_accuracy')}; greedy accuracy "
                  f"{before.get('greedy_accuracy')} -> {after.get('greedy_accuracy')}; {run.step} steps "
                  f"in {summary['wall_seconds']:.0f} s ({run.dir})")
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
