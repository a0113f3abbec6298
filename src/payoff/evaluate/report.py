"""Reports: a table on the terminal, and report.json, report.md, report.html and PNG plots in a
folder."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def table_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("overall", _fmt(report.get("overall")))]
    for name, value in (report.get("sections") or {}).items():
        rows.append((f"section {name}", _fmt(value)))
    for name, value in (report.get("subsets") or {}).items():
        rows.append((f"  {name}", _fmt(value)))
    for key in ("hard", "normal", "easy", "mrr", "tie_rate", "unscored"):
        if key in report:
            rows.append((key, _fmt(report[key])))
    bias = report.get("bias") or {}
    for key in ("accuracy_chosen_longer", "accuracy_chosen_shorter", "length_correlation"):
        if key in bias:
            rows.append((key, _fmt(bias[key])))
    for name, info in (report.get("types") or {}).items():
        key = "false_positive_rate" if "false_positive_rate" in info else "false_negative_rate"
        rows.append((f"  {name} ({info['truth']}) {'FP' if key.startswith('false_p') else 'FN'} rate", _fmt(info[key])))
    rows.append(("answers by status", ", ".join(f"{k} {v}" for k, v in report.get("statuses", {}).items())))
    return rows


def print_table(report: dict[str, Any], console: Any, title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in table_rows(report):
        table.add_row(name, value)
    console.print(table)


def plot_calibration(report: dict[str, Any], path: Path) -> Path | None:
    bins = (report.get("bias") or {}).get("calibration") or []
    if not bins:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4.5, 4))
    axis.plot([0, 1], [0, 1], "--", color="grey", label="calibrated")
    axis.plot([b["mean_p"] for b in bins], [b["won"] for b in bins], "o-", label=report.get("reward", "reward"))
    axis.set_xlabel("sigma(r_chosen - r_rejected)")
    axis.set_ylabel("share the chosen answer won")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def write_report(report: dict[str, Any], folder: Path, title: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in report.items() if not k.startswith("_")}
    written = [folder / "report.json"]
    written[0].write_text(json.dumps(public, indent=1, default=repr))
    lines = [f"# {title}", "", "| metric | value |", "|---|---|"] + [f"| {n.strip()} | {v} |" for n, v in table_rows(report)]
    (folder / "report.md").write_text("\n".join(lines) + "\n")
    cells = "".join(f"<tr><td>{html.escape(n)}</td><td>{html.escape(v)}</td></tr>" for n, v in table_rows(report))
    (folder / "report.html").write_text(f"<html><body><h1>{html.escape(title)}</h1><table>{cells}</table></body></html>\n")
    written += [folder / "report.md", folder / "report.html"]
    if report.get("_items"):  # per row: its answers, scores and whether the reward got it right (`payoff view`)
        with open(folder / "items.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(item, default=repr) + "\n" for item in report["_items"])
        written.append(folder / "items.jsonl")
    picture = plot_calibration(report, folder / "calibration.png")
    if picture:
        written.append(picture)
    return written
