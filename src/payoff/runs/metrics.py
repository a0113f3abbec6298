"""What a run writes: per-step JSONL metrics, TensorBoard scalars when installed, sample
completions, a PNG of the curves and ``summary.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CURVES = ("reward_mean", "accuracy", "heldout_accuracy", "kl", "entropy", "completion_length", "clip_fraction", "loss")


class MetricsLog:
    def __init__(self, run_dir: Path, tensorboard: bool = True, resume_step: int | None = None) -> None:
        self.path = run_dir / "metrics.jsonl"
        self.samples_path = run_dir / "samples.jsonl"
        if resume_step is not None:
            # A killed run may have logged steps after its last checkpoint; those steps run again.
            for path in (self.path, self.samples_path):
                if path.exists():
                    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= resume_step]
                    path.write_text("".join(line + "\n" for line in kept))
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:  # tensorboard is optional
                self.writer = None

    def log(self, row: dict[str, Any]) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        if self.writer is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key != "step":
                    self.writer.add_scalar(key, value, row["step"])
            self.writer.flush()

    def log_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        with open(self.samples_path, "a") as handle:
            for sample in samples:
                handle.write(json.dumps({"step": step, **sample}) + "\n")

    def rows(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def plot_curves(rows: list[dict[str, Any]], path: Path, title: str = "", keys: tuple[str, ...] = CURVES) -> Path | None:
    """A grid of the main curves against step; None when matplotlib is missing or nothing logged."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    keys = [key for key in keys if any(key in row for row in rows)]
    if not keys:
        return None
    columns = 2
    lines = (len(keys) + 1) // 2
    figure, axes = plt.subplots(lines, columns, figsize=(10, 2.6 * lines), squeeze=False)
    for axis, key in zip(axes.flat, keys):
        points = [(row["step"], row[key]) for row in rows if key in row and row[key] is not None]
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o" if key == "heldout_accuracy" else None)
        axis.set_title(key)
        axis.set_xlabel("step")
    for axis in list(axes.flat)[len(keys):]:
        axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def plot_comparison(runs: dict[str, list[dict[str, Any]]], path: Path, keys: tuple[str, ...] = ("reward_mean", "heldout_accuracy"),
                    x: str = "step") -> Path:
    """One panel per key, one line per run (the Minimalist comparison), against ``x`` (``step``
    or ``train_seconds``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
    for axis, key in zip(axes.flat, keys):
        for label, rows in runs.items():
            points = [(row[x], row[key]) for row in rows if row.get(key) is not None and row.get(x) is not None]
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o" if key == "heldout_accuracy" else None, label=label)
        axis.set_title(key)
        axis.set_xlabel("training seconds" if x == "train_seconds" else x)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
