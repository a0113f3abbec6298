"""`train_prm()`: a process reward model, one loop read top to bottom, with the reward-model
trainer's qualities (seeded step order, gradient accumulation, accelerate/DDP, atomic checkpoints
and SIGKILL-safe resume, JSONL/TensorBoard metrics, curves.png, summary.json).

Loss: binary cross-entropy with logits at every step's last token against the step's label,
soft labels kept as floats (Math-Shepherd's soft estimates), averaged over the steps of the
micro-batch. Held-out: step accuracy (P > threshold agrees with label > 1/2) and ProcessBench F1
(first step below the threshold against the first step labelled below 1/2).
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
import torch.nn.functional as F

from payoff.evaluate.processbench import first_wrong_step, processbench_scores
from payoff.prm.config import PRMConfig
from payoff.prm.data import StepExample, read_step_data
from payoff.prm.model import ProcessRewardModel, score_steps, write_prm_info
from payoff.prm.steps import encode_steps
from payoff.rm.model import ModelInfo, RenderSpec, add_lora, collate, load_trunk, save_reward_model
from payoff.rm.train import held_out_split, learning_rate, step_indices
from payoff.runs.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from payoff.runs.metrics import MetricsLog, plot_curves
from payoff.runs.optim import adamw

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

    # -- data and model -------------------------------------------------------------------------------
    train_examples, report = read_step_data(cfg.data.train, cfg.data.neutral, cfg.data.on_bad)
    console.print(report.describe())
    reports = {"train": report.to_dict()}
    if cfg.data.eval:
        eval_examples, eval_report = read_step_data(cfg.data.eval, cfg.data.neutral, cfg.data.on_bad)
        reports["eval"] = eval_report.to_dict()
    else:
        train_examples, eval_examples = held_out_split(train_examples, cfg.data.eval_fraction, cfg.seed)
    train_examples, eval_examples = train_examples[: cfg.data.train_size], eval_examples[: cfg.data.eval_size]
    trunk, tokenizer = load_trunk(cfg.model.name)
    if cfg.model.lora is not None:
        trunk = add_lora(trunk, cfg.model.lora.model_dump())
    torch.manual_seed(cfg.seed)
    model = ProcessRewardModel(trunk, 1)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model.train()
    pad_id = int(tokenizer.pad_token_id)
    train, held = Encoded(train_examples, tokenizer, cfg), Encoded(eval_examples, tokenizer, cfg)
    if train.cut:
        console.print(f"[yellow]{train.cut} training solutions run past {cfg.model.max_length} tokens: their last steps are left out[/]")
    optimizer = adamw([p for p in model.parameters() if p.requires_grad], cfg.optim.lr, cfg.optim.betas, cfg.optim.weight_decay)
    unwrapped = model
    model, optimizer = accelerator.prepare(model, optimizer)
    device, world, rank = accelerator.device, accelerator.num_processes, accelerator.process_index

    # -- resume -------------------------------------------------------------------------------------------
    step, state, wall_before = 0, {}, 0.0
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, unwrapped, optimizer)
        step, wall_before = state["step"], float(state.get("wall_seconds_before_resume", 0.0))
        console.print(f"resumed from {checkpoint} (step {step})")
    elif main:
        (run_dir / "config.json").write_text(cfg.model_dump_json(indent=1))
        if (run_dir / "metrics.jsonl").exists():
            (run_dir / "metrics.jsonl").unlink()
    log = MetricsLog(run_dir, cfg.log.tensorboard, resume_step=step if checkpoint is not None else None) if main else None
    before = state.get("before") or evaluate_steps(unwrapped, held, pad_id, cfg)
    console.print(f"held-out before: step accuracy {before.get('step_accuracy')}, ProcessBench F1 {before.get('f1')}")

    # -- the loop ---------------------------------------------------------------------------------------------
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    loop_started, first_step = time.perf_counter(), step
    columns = [TextColumn("[bold]prm"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
               TextColumn("acc {task.fields[acc]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, disable=not (cfg.log.progress and main)) as progress:
        bar = progress.add_task("prm", total=cfg.steps, completed=step, loss="-", acc="-")
        while step < cfg.steps:
            lr = learning_rate(step, cfg)  # type: ignore[arg-type]
            for group in optimizer.param_groups:
                group["lr"] = lr
            mine = step_indices(step, cfg.optim.batch_size, len(train), cfg.seed)[rank::world]
            chunks = [mine[i:i + cfg.optim.micro_batch] for i in range(0, len(mine), cfg.optim.micro_batch)]
            totals = torch.zeros(3)  # loss * steps, correct steps, steps
            all_steps = sum(len(train.labels[i]) for i in mine) or 1
            for number, chunk in enumerate(chunks):
                ids, mask = collate([train.ids[i] for i in chunk], pad_id)
                sync = number == len(chunks) - 1
                with accelerator.no_sync(model) if not sync else contextlib.nullcontext():
                    logits = model(ids.to(device), mask.to(device), [train.positions[i] for i in chunk])
                    flat = torch.cat(logits) if logits else torch.zeros(0)
                    target = torch.tensor([y for i in chunk for y in train.labels[i]], dtype=flat.dtype, device=flat.device)
                    loss = F.binary_cross_entropy_with_logits(flat, target, reduction="sum") if len(flat) else flat.sum()
                    accelerator.backward(loss / all_steps)
                with torch.no_grad():
                    totals += torch.tensor([loss.item(), ((flat.detach() > 0) == (target > 0.5)).sum().item(), len(flat)])
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.optim.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            totals = accelerator.reduce(totals.to(device), reduction="sum").cpu()
            row = {"step": step, "loss": totals[0].item() / max(1, totals[2].item()), "step_accuracy": totals[1].item() / max(1, totals[2].item()),
                   "lr": lr, "grad_norm": float(grad_norm)}
            if log is not None:
                log.log(row)
            progress.update(bar, completed=step, loss=f"{row['loss']:.3f}", acc=f"{row['step_accuracy']:.0%}")
            if cfg.checkpoint_every and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                if main:
                    save_checkpoint(run_dir, step, unwrapped, optimizer, {"before": before, "wall_seconds_before_resume":
                                                                          wall_before + time.perf_counter() - started}, cfg.keep_checkpoints)
                accelerator.wait_for_everyone()
    loop_seconds = time.perf_counter() - loop_started

    # -- after -------------------------------------------------------------------------------------------------
    after = evaluate_steps(unwrapped, held, pad_id, cfg)
    wall = wall_before + time.perf_counter() - started
    summary = {"steps": step, "seed": cfg.seed, "wall_seconds": round(wall, 1),
               "seconds_per_step": round(loop_seconds / (step - first_step), 4) if step > first_step else None,
               "step_accuracy_before": before.get("step_accuracy"), "step_accuracy_after": after.get("step_accuracy"),
               "f1_before": before.get("f1"), "f1_after": after.get("f1"), "before": before, "after": after,
               "train_solutions": len(train), "eval_solutions": len(held), "cut_train_solutions": train.cut, "data": reports,
               "processes": world, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
               "resumed_from": str(checkpoint) if checkpoint else None, "model": str(run_dir / "model")}
    if main:
        lora = cfg.model.lora.model_dump() if cfg.model.lora is not None else None
        spec = RenderSpec(cfg.model.chat_template, cfg.model.max_length, "right")
        save_reward_model(run_dir / "model", unwrapped, tokenizer, ModelInfo(cfg.model.name, 1, lora, spec))
        write_prm_info(run_dir / "model", {"kind": "prm", "separator": cfg.step.separator, "chat_template": cfg.model.chat_template,
                                           "max_length": cfg.model.max_length, "threshold": cfg.step.threshold})
        rows = log.rows() if log is not None else []
        if cfg.log.plot and rows:
            picture = plot_curves(rows, run_dir / "curves.png", title=f"process reward model, seed {cfg.seed}", keys=CURVES)
            summary["plot"] = str(picture) if picture else None
        if log is not None:
            log.close()
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        console.print(f"held-out step accuracy {before.get('step_accuracy')} -> {after.get('step_accuracy')}, ProcessBench F1 "
                      f"{before.get('f1')} -> {after.get('f1')} after {step} steps in {wall:.0f} s")
    accelerator.wait_for_everyone()
    return summary

