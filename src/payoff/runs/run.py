"""`Run`: one training run's folder and bookkeeping, the same for every trainer.

A trainer keeps its own loop and asks the run for the rest::

    run = Run(config, resume, console, processes)          # the folder; seeds python, numpy, torch
    state = run.resume(model, optimizer)                   # newest checkpoint, or a fresh config.json
    with run.progress("rm", loss="-") as bar:              # the Rich progress bar
        for lr, mine, chunks in run.batches(optimizer, len(train)):  # lr set, this process's examples
            ...                                            # the trainer's step
            run.end_step({"loss": ...}, model, optimizer, {"before": before})  # metrics.jsonl, checkpoint
            bar.update(run.step, loss=...)
    summary = run.finish({...}, curves=(...), title="...")  # summary.json, curves.png

A trainer with its own notion of a step (`payoff.rl`) uses the parts: ``step``, ``log``,
``checkpoint_due``, ``save``.

The folder holds ``config.json`` (the validated config, which ``--resume`` reloads),
``metrics.jsonl`` (one row per step), ``tensorboard/``, ``checkpoints/step-NNNNNN`` (atomic: see
`payoff.runs.checkpoint`), ``curves.png`` and ``summary.json``. Under several processes only the
main one writes; every one of them runs the same calls.
"""

from __future__ import annotations

import contextlib
import json
import random
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from payoff.heap import held_heap
from payoff.runs.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from payoff.runs.data import step_indices
from payoff.runs.metrics import CURVES, MetricsLog, plot_curves
from payoff.runs.optim import learning_rate, set_learning_rate


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def peak_memory() -> dict[str, float]:
    """The process's peak resident memory and, on a GPU, the peak memory torch allocated, in MB."""
    peak = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        peak["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return peak


class Bar:
    """The progress bar of a run's loop: ``update(step, **fields)``; ``print`` writes above it."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress, self._task = progress, task
        self.console = progress.console

    def update(self, step: int, **fields: Any) -> None:
        self._progress.update(self._task, completed=step, **fields)

    def print(self, text: str) -> None:
        self.console.print(text)


class Run:
    def __init__(self, config: Any, resume: str | Path | None = None, console: Any = None, processes: Any = None) -> None:
        """``config``: a `payoff.runs.config.RunConfig` (with a ``log`` table); ``resume``: the
        folder of the run to continue (its checkpoints), which becomes ``config.run_dir``;
        ``processes``: a `payoff.runs.processes.Processes` when the trainer runs on several."""
        from rich.console import Console

        self.processes = processes
        self.main = processes is None or processes.main
        self.dir = Path(resume) if resume else Path(config.run_dir)
        self.config = config.model_copy(update={"run_dir": str(self.dir)}) if resume else config
        self.resuming = resume is not None
        self.console = console if console is not None and self.main else Console(stderr=True, quiet=not self.main)
        if self.main:
            self.dir.mkdir(parents=True, exist_ok=True)
        self.started = time.perf_counter()
        self.step, self.wall_before = 0, 0.0
        self.checkpoint: Path | None = None
        self.metrics: MetricsLog | None = None
        self._first_step, self._loop_seconds = 0, 0.0
        self._step_mark: float | None = None  # when the step before ended (or the loop began): `end_step`'s time_step
        seed_everything(self.config.seed)

    # -- start ----------------------------------------------------------------------------------------
    def resume(self, model: Any, optimizer: Any, parts: dict[str, Any] | None = None) -> dict[str, Any]:
        """Restore the newest checkpoint when resuming (weights, optimiser, ``parts``, RNG states;
        sets ``step``) and return the state saved with it; a fresh run writes ``config.json`` and
        starts a fresh ``metrics.jsonl``. Then opens the metrics log."""
        state: dict[str, Any] = {}
        self.checkpoint = latest_checkpoint(self.dir) if self.resuming else None
        if self.checkpoint is not None:
            state = load_checkpoint(self.checkpoint, model, optimizer, parts)
            self.step, self.wall_before = state["step"], float(state.get("wall_seconds_before_resume", 0.0))
            self.console.print(f"resumed from {self.checkpoint} (step {self.step})")
        else:
            if self.resuming:
                self.console.print(f"[yellow]no checkpoint in {self.dir}; starting from step 0[/]")
            if self.main:
                (self.dir / "config.json").write_text(self.config.model_dump_json(indent=1))
                (self.dir / "metrics.jsonl").unlink(missing_ok=True)  # a fresh run into an old folder starts a fresh log
        if self.main:
            self.metrics = MetricsLog(self.dir, self.config.log.tensorboard, resume_step=self.step if self.checkpoint is not None else None)
        self._first_step = self.step
        return state

    # -- the loop ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def progress(self, name: str, large_blocks: bool = False, **fields: str) -> Iterator[Bar]:
        """A progress bar from ``step`` to ``config.steps``, showing ``fields`` (``name value``); the
        training loop it wraps runs with the heap held (`payoff.heap.held_heap`: memory a step
        frees is reused by the next, not faulted in again), blocks over 32 MB too with
        ``large_blocks`` (for a loop whose large blocks are the same every step)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = [TextColumn(f"[bold]{name}"), BarColumn(), MofNCompleteColumn(),
                   *(TextColumn(f"{key} {{task.fields[{key}]}}") for key in fields), TimeElapsedColumn(), TimeRemainingColumn()]
        started = self._step_mark = time.perf_counter()
        with held_heap(large_blocks), Progress(*columns, console=self.console, disable=not (self.config.log.progress and self.main)) as progress:
            yield Bar(progress, progress.add_task(name, total=self.config.steps, completed=self.step, **fields))
        self._loop_seconds += time.perf_counter() - started

    def batches(self, optimizer: Any, size: int) -> Iterator[tuple[float, list[int], list[list[int]]]]:
        """The remaining optimiser steps of a run over ``size`` examples (a
        `payoff.runs.config.DatasetRunConfig`): for each, the learning rate (set on
        ``optimizer``), this process's share of the step's examples in the seeded order, and that
        share in micro-batches. The trainer ends every step with `end_step`."""
        cfg = self.config
        while self.step < cfg.steps:
            step = self.step
            lr = learning_rate(step, cfg.optim.lr, cfg.steps, cfg.optim.warmup_steps, cfg.optim.schedule)
            set_learning_rate(optimizer, lr)
            mine = step_indices(step, cfg.optim.batch_size, size, cfg.seed)
            mine = self.processes.share(mine) if self.processes is not None else mine
            yield lr, mine, [mine[i:i + cfg.optim.micro_batch] for i in range(0, len(mine), cfg.optim.micro_batch)]
            if self.step == step:
                raise RuntimeError("a step of Run.batches must end with Run.end_step")

    def end_step(self, row: dict[str, Any], model: Any, optimizer: Any, state: dict[str, Any], parts: dict[str, Any] | None = None) -> None:
        """The step is done: count it, log ``row`` as its metrics (with ``time_step``, its wall
        seconds, inside `progress`), and checkpoint (``model``, ``optimizer``, ``state``,
        ``parts``) when one is due."""
        self.step += 1
        if self._step_mark is not None:  # inside `progress`
            # wall seconds since the step before ended (or the loop began), its checkpoint not counted
            row = {**row, "time_step": round(time.perf_counter() - self._step_mark, 4)}
        self.log({"step": self.step, **row})
        if self.checkpoint_due():
            self.save(model, optimizer, state, parts)
        if self._step_mark is not None:
            self._step_mark = time.perf_counter()

    def log(self, row: dict[str, Any]) -> None:
        """One step's metrics (``row["step"]`` is the step)."""
        if self.metrics is not None:
            self.metrics.log(row)

    def checkpoint_due(self, last: bool = False) -> bool:
        """Every ``checkpoint_every`` steps, and at the last step (``config.steps``, or ``last``)."""
        every = self.config.checkpoint_every
        return bool(every) and (self.step % every == 0 or self.step == self.config.steps or last)

    def save(self, model: Any, optimizer: Any, state: dict[str, Any], parts: dict[str, Any] | None = None) -> None:
        """A checkpoint of this step: the trainable weights, the optimiser, ``parts``, RNG states
        and ``state`` (with the wall time so far). Under several processes the main one writes and
        all wait for it."""
        if self.main:
            save_checkpoint(self.dir, self.step, model, optimizer, {**state, "wall_seconds_before_resume": self.wall_seconds()},
                            self.config.keep_checkpoints, parts)
        if self.processes is not None:
            self.processes.wait()

    def wall_seconds(self) -> float:
        """Seconds this run has taken, over every resume."""
        return self.wall_before + time.perf_counter() - self.started

    # -- end ------------------------------------------------------------------------------------------
    def finish(self, summary: dict[str, Any], curves: tuple[str, ...] = CURVES, title: str = "") -> dict[str, Any]:
        """``summary`` with what every run reports (steps, seed, wall and per-step time, processes,
        peak memory, the checkpoint it resumed from, the curves' picture), written to
        ``summary.json`` with ``curves.png``; returns it."""
        done = self.step - self._first_step
        summary = {"steps": self.step, "seed": self.config.seed, "wall_seconds": round(self.wall_seconds(), 1),
                   "seconds_per_step": round(self._loop_seconds / done, 4) if done else None, **summary,
                   "processes": self.processes.world if self.processes is not None else 1, **peak_memory(),
                   "resumed_from": str(self.checkpoint) if self.checkpoint else None}
        if self.main:
            rows = self.metrics.rows() if self.metrics is not None else []
            if self.config.log.plot and rows:
                picture = plot_curves(rows, self.dir / "curves.png", title=title, keys=curves)
                summary["plot"] = str(picture) if picture else None
            if self.metrics is not None:
                self.metrics.close()
            (self.dir / "summary.json").write_text(json.dumps(summary, indent=1))
        if self.processes is not None:
            self.processes.wait()
        return summary
