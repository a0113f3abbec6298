"""`train_prm()`: a process reward model, one loop read top to bottom, on the run harness of every
trainer (`payoff.runs`: seeded step order, gradient accumulation, accelerate/DDP, atomic
checkpoints and SIGKILL-safe resume, JSONL/TensorBoard metrics, curves.png, summary.json).

Loss: binary cross-entropy with logits at every step's last token against the step's label,
soft labels kept as floats (Math-Shepherd's soft estimates), averaged over the steps of the
micro-batch. Held-out: step accuracy (P > threshold agrees with label > 1/2) and ProcessBench F1
(first step below the threshold against the first step labelled below 1/2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from payoff.evaluate.processbench import first_wrong_step, processbench_scores
from payoff.heap import bounded_kernel_cache
from payoff.models.attention import cpu_attention
from payoff.models.embedding_rows import fold_rows, train_used_rows
from payoff.models.precision import autocast
from payoff.models.reward_model import ModelInfo, RenderSpec, add_lora, collate, load_trunk, round_up, save_reward_model
from payoff.prm.config import PRMConfig
from payoff.prm.data import StepExample, read_step_data
from payoff.prm.model import ProcessRewardModel, score_steps, write_prm_info
from payoff.prm.steps import encode_steps
from payoff.runs.data import load_split
from payoff.runs.memory import token_chunks
from payoff.runs.optim import adamw, dropout_off
from payoff.runs.processes import Processes
from payoff.runs.run import Run

CURVES = ("loss", "step_accuracy", "lr", "grad_norm")


class Encoded:
    def __init__(self, examples: list[StepExample], tokenizer: Any, cfg: PRMConfig) -> None:
        self.ids, self.positions, self.labels, self.cut = [], [], [], 0
        self.examples = examples
        for example in examples:
            ids, positions = encode_steps(tokenizer, example.prompt, example.steps, cfg.step.separator, cfg.model.chat_template,
                                          cfg.model.max_length)
            self.cut += len(positions) < len(example.steps)
            self.ids.append(ids)
            self.positions.append(positions)
            self.labels.append(example.labels[: len(positions)])

    def __len__(self) -> int:
        return len(self.ids)


def evaluate_steps(model: ProcessRewardModel, data: Encoded, pad_id: int, cfg: PRMConfig) -> dict[str, Any]:
    if not len(data):
        return {}
    scores = score_steps(model, data.ids, data.positions, pad_id, cfg.eval_batch_size)
    agree = [float((p > cfg.step.threshold) == (y > 0.5)) for ps, ys in zip(scores, data.labels) for p, y in zip(ps, ys)]
    rows = [{"label": next((i for i, y in enumerate(ys) if y < 0.5), -1), "prediction": first_wrong_step(ps, cfg.step.threshold),
             "subset": ex.meta.get("subset")} for ps, ys, ex in zip(scores, data.labels, data.examples)]
    bench = processbench_scores(rows)
    return {"step_accuracy": sum(agree) / len(agree) if agree else None, "f1": bench["overall"], "processbench": bench,
            "solutions": len(data), "steps": len(agree)}


def train_prm(config: PRMConfig, resume: str | Path | None = None, console: Any = None) -> dict[str, Any]:
    """Train; returns the summary (also ``run_dir/summary.json``); the model is ``run_dir/model``,
    read by the ``prm`` reward."""
    bounded_kernel_cache()  # before the first bf16 product: a smaller heap (payoff.heap)
    run = Run(config, resume, console, Processes())
    cfg, console, processes = run.config, run.console, run.processes

    # -- data and model -------------------------------------------------------------------------------
    train_examples, eval_examples, reports = load_split(cfg.data, lambda path: read_step_data(path, cfg.data.neutral, cfg.data.on_bad),
                                                        cfg.seed, console)
    trunk, tokenizer = load_trunk(cfg.model.name)
    if cfg.model.attention == "plain":
        cpu_attention(trunk)
    if cfg.model.lora is not None:
        trunk = add_lora(trunk, cfg.model.lora.model_dump())
    torch.manual_seed(cfg.seed)
    unwrapped = ProcessRewardModel(trunk, 1)
    dropout_off(unwrapped)
    unwrapped.train()
    pad_id = int(tokenizer.pad_token_id)
    train, held = Encoded(train_examples, tokenizer, cfg), Encoded(eval_examples, tokenizer, cfg)
    if train.cut:
        console.print(f"[yellow]{train.cut} training solutions run past {cfg.model.max_length} tokens: their last steps are left out[/]")
    # only the embedding rows the loop looks up train (the same updates: payoff.models.embedding_rows)
    embedding_rows = train_used_rows(unwrapped.trunk, {t for ids in train.ids for t in ids} | {pad_id}, cfg.optim.weight_decay)
    optimizer = adamw([p for p in unwrapped.parameters() if p.requires_grad], cfg.optim.lr, cfg.optim.betas, cfg.optim.weight_decay)
    model, optimizer = processes.prepare(unwrapped, optimizer)
    state = run.resume(unwrapped, optimizer)
    with autocast(cfg.precision):
        before = state.get("before") or evaluate_steps(unwrapped, held, pad_id, cfg)
    console.print(f"held-out before: step accuracy {before.get('step_accuracy')}, ProcessBench F1 {before.get('f1')}")

    # -- the loop ---------------------------------------------------------------------------------------------
    multiple = cfg.optim.pad_to_multiple_of  # widths rounded up to it: fewer distinct shapes (docs/rm.md)
    padded_width = lambda i: round_up(len(train.ids[i]), multiple)  # noqa: E731
    # large blocks held too: they are the gradients (the embedding's is 113 MB), the same every step
    with run.progress("prm", large_blocks=True, loss="-", acc="-") as bar:
        for lr, mine, _ in run.batches(optimizer, len(train)):
            totals = torch.zeros(3)  # loss * steps, correct steps, steps
            # longest first, under the token budget: sorted rows pad little, the peak has a bound
            chunks = token_chunks(mine, padded_width, cfg.optim.micro_batch, cfg.optim.micro_tokens)
            all_steps = sum(len(train.labels[i]) for i in mine) or 1
            # one autocast context a step: bf16 copies of the weights are made once, not once per micro-batch
            with autocast(cfg.precision):
                for number, chunk in enumerate(chunks):
                    ids, mask = collate([train.ids[i] for i in chunk], pad_id, multiple=multiple)
                    with processes.accumulate(model, last=number == len(chunks) - 1):
                        logits = model(ids.to(processes.device), mask.to(processes.device), [train.positions[i] for i in chunk])
                        flat = torch.cat(logits).float() if logits else torch.zeros(0)
                        target = torch.tensor([y for i in chunk for y in train.labels[i]], dtype=flat.dtype, device=flat.device)
                        loss = F.binary_cross_entropy_with_logits(flat, target, reduction="sum") if len(flat) else flat.sum()
                        processes.backward(loss / all_steps)
                    with torch.no_grad():
                        totals += torch.tensor([loss.item(), ((flat.detach() > 0) == (target > 0.5)).sum().item(), len(flat)])
            grad_norm = processes.step(model, optimizer, cfg.optim.max_grad_norm)
            totals = processes.sum(totals)
            steps_seen = max(1, totals[2].item())
            row = {"loss": totals[0].item() / steps_seen, "step_accuracy": totals[1].item() / steps_seen, "lr": lr, "grad_norm": grad_norm}
            run.end_step(row, unwrapped, optimizer, {"before": before})
            bar.update(run.step, loss=f"{row['loss']:.3f}", acc=f"{row['step_accuracy']:.0%}")

    # -- after -------------------------------------------------------------------------------------------------
    fold_rows(unwrapped.trunk)
    with autocast(cfg.precision):
        after = evaluate_steps(unwrapped, held, pad_id, cfg)
    if run.main:
        lora = cfg.model.lora.model_dump() if cfg.model.lora is not None else None
        spec = RenderSpec(cfg.model.chat_template, cfg.model.max_length, "right")
        save_reward_model(run.dir / "model", unwrapped, tokenizer, ModelInfo(cfg.model.name, 1, lora, spec))
        write_prm_info(run.dir / "model", {"kind": "prm", "separator": cfg.step.separator, "chat_template": cfg.model.chat_template,
                                           "max_length": cfg.model.max_length, "threshold": cfg.step.threshold})
    summary = run.finish({"step_accuracy_before": before.get("step_accuracy"), "step_accuracy_after": after.get("step_accuracy"),
                          "f1_before": before.get("f1"), "f1_after": after.get("f1"), "before": before, "after": after,
                          "train_solutions": len(train), "eval_solutions": len(held), "cut_train_solutions": train.cut, "data": reports,
                          "embedding_rows_trained": embedding_rows,
                          "model": str(run.dir / "model")}, CURVES, title=f"process reward model, seed {cfg.seed}")
    console.print(f"held-out step accuracy {before.get('step_accuracy')} -> {after.get('step_accuracy')}, ProcessBench F1 "
                  f"{before.get('f1')} -> {after.get('f1')} after {run.step} steps in {summary['wall_seconds']:.0f} s")
    return summary
