"""Run a config's variants one after another and compare them in one plot and one table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from payoff.rl.config import TrainConfig, variant_configs
from payoff.rl.loop import train
from payoff.runs.metrics import plot_comparison


def train_variants(config: TrainConfig, console: Any = None) -> dict[str, Any]:
    """Train every variant; writes ``comparison.png`` and ``comparison.json`` in ``run_dir``."""
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    curves: dict[str, list[dict[str, Any]]] = {}
    for name, variant in variant_configs(config).items():
        if console is not None:
            console.rule(f"variant {name}")
        summary = train(variant, console=console)
        results[name] = {k: summary.get(k) for k in ("accuracy_before", "accuracy_after", "steps", "wall_seconds", "train_seconds")}
        rows = [json.loads(line) for line in (Path(variant.run_dir) / "metrics.jsonl").read_text().splitlines() if line.strip()]
        if summary.get("accuracy_before") is not None:
            rows = [{"step": 0, "train_seconds": 0.0, "heldout_accuracy": summary["accuracy_before"]}, *rows,
                    {"step": summary["steps"], "train_seconds": summary["train_seconds"], "heldout_accuracy": summary["accuracy_after"]}]
        curves[name] = rows
    # Variants under a time budget are compared at equal training time, so that is the x axis.
    x = "train_seconds" if config.time_budget_s is not None else "step"
    picture = plot_comparison(curves, run_dir / "comparison.png", x=x)
    report = {"variants": results, "plot": str(picture)}
    (run_dir / "comparison.json").write_text(json.dumps(report, indent=1))
    return report
