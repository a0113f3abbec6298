"""The hack matrix: one cell per (hack class, reward), built from an audit of the reward on the
user's own tasks, with false-negative rates beside it.

A cell's ``status`` is ``pass`` (no probe credited), ``fail`` (some were; ``example`` is the
first) or ``n/a`` (the class built no probe from these tasks; ``why`` says why). `Matrix` writes
``matrix.json`` (the schema docs/audit.md gives), a markdown table and a heat map.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from payoff.audit.hacks import HACKS
from payoff.audit.runner import AuditReport

# The kind of each built-in reward, as the matrix's columns group them.
KIND_OF = {
    "math": "math", "multiple_choice": "choice", "exact_match": "text", "regex_match": "text", "code": "code", "sql": "sql",
    "bleu": "similarity", "chrf": "similarity", "rouge": "similarity", "embedding_cosine": "similarity",
    "patch_similarity": "similarity", "think_format": "format", "tag_format": "format", "tag_count": "format",
    "json_schema": "format", "cosine_length": "length", "overlong_penalty": "length", "budget_length": "length", "laser": "length",
    "reward_model": "reward_model", "prm": "prm", "implicit_reward": "implicit", "gated_turns": "episode", "try_again": "episode",
    "tool_call_validity": "episode", "episode_cost": "episode", "tool_call": "episode",
}
_TASK_KIND = {"math": "math", "choice": "choice", "text": "text", "code": "code", "sql": "sql"}


def reward_kind(name: str, tasks: Sequence[dict[str, Any]] = ()) -> str:
    """The kind of reward `name` is: a built-in's own, a judge's, else the commonest task kind."""
    if name in KIND_OF:
        return KIND_OF[name]
    if name.startswith("judge_"):
        return "judge"
    kinds = Counter(str(t.get("kind", "math")) for t in tasks)
    return _TASK_KIND.get(kinds.most_common(1)[0][0], "math") if kinds else "math"


@dataclass
class Cell:
    hack: str
    kind: str
    reward: str
    probes: int
    exploits: int
    rate: float
    status: str  # "pass" | "fail" | "n/a"
    why: str
    example: dict[str, Any] | None = None


@dataclass
class Matrix:
    cells: list[Cell] = field(default_factory=list)
    false_negatives: dict[str, dict[str, float]] = field(default_factory=dict)

    def merge(self, other: Matrix) -> Matrix:
        return Matrix(self.cells + other.cells, {**self.false_negatives, **other.false_negatives})

    def rewards(self) -> list[str]:
        return list(dict.fromkeys(c.reward for c in self.cells))

    def hacks(self) -> list[str]:
        return list(dict.fromkeys(c.hack for c in self.cells))

    def to_dict(self) -> dict[str, Any]:
        return {"cells": [asdict(c) for c in self.cells], "false_negatives": self.false_negatives}

    def write(self, folder: Path) -> list[Path]:
        """``matrix.json``, ``matrix.md`` and ``matrix.png`` in `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "matrix.json", folder / "matrix.md", folder / "matrix.png"]
        paths[0].write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False, default=repr))
        paths[1].write_text(self.to_markdown())
        self.heatmap(paths[2])
        return paths

    def table(self) -> list[str]:
        """The matrix as markdown rows: one per hack class, one column per reward."""
        rewards, kinds = self.rewards(), {c.reward: c.kind for c in self.cells}
        at = {(c.hack, c.reward): c for c in self.cells}
        lines = ["| hack | " + " | ".join(f"{r} ({kinds[r]})" for r in rewards) + " |", "|---|" + "---:|" * len(rewards)]
        for hack in self.hacks():
            row = []
            for reward in rewards:
                cell = at.get((hack, reward))
                if cell is None or cell.status == "n/a":
                    row.append("n/a")
                else:
                    text = f"{cell.exploits}/{cell.probes}"
                    row.append(f"**{text}**" if cell.status == "fail" else text)
            lines.append(f"| {hack} | " + " | ".join(row) + " |")
        fn = [self.false_negatives.get(r) for r in rewards]
        lines.append("| *false negatives* | " + " | ".join(f"{f['missed']}/{f['n']} ({f['rate']:.1%})" if f else "-" for f in fn) + " |")
        return lines

    def to_markdown(self) -> str:
        lines = ["# The hack matrix", "", "Each cell: exploit probes credited / probes (bold: the reward was fooled). "
                 "n/a: the class built no probe for that reward (reasons below).", "", *self.table()]
        failing = [c for c in self.cells if c.status == "fail"]
        if failing:
            lines += ["", "## Worked examples (one per failing cell)", ""]
            for cell in failing:
                example = cell.example or {}
                lines += [f"### {cell.hack} × {cell.reward}: {cell.exploits}/{cell.probes} credited", "",
                          f"- prompt: `{str(example.get('prompt', ''))[:200]!r}`",
                          f"- completion: `{str(example.get('completion', ''))[:400]!r}`",
                          f"- score: {example.get('score')}" + (f" ({cell.why})" if cell.why else ""), ""]
        reasons: dict[str, list[str]] = {}
        for cell in self.cells:
            if cell.status == "n/a":
                reasons.setdefault(cell.why, []).append(f"{cell.hack}×{cell.reward}")
        if reasons:
            lines += ["", "## Why cells are n/a", ""]
            for why, where in reasons.items():
                lines.append(f"- {why}: {len(where)} cell(s), e.g. {', '.join(where[:4])}")
        return "\n".join(lines) + "\n"

    def heatmap(self, path: Path) -> None:
        """Exploit rate per cell (grey: n/a), hack classes down, rewards across."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        rewards, hacks = self.rewards(), self.hacks()
        at = {(c.hack, c.reward): c for c in self.cells}
        values = np.full((len(hacks), len(rewards)), np.nan)
        for i, hack in enumerate(hacks):
            for j, reward in enumerate(rewards):
                cell = at.get((hack, reward))
                if cell is not None and cell.status != "n/a":
                    values[i, j] = cell.rate
        figure, axes = plt.subplots(figsize=(2.0 + 0.9 * len(rewards), 1.5 + 0.22 * len(hacks)))
        colours = matplotlib.colormaps["Reds"].with_extremes(bad="#dddddd")
        image = axes.imshow(np.ma.masked_invalid(values), cmap=colours, vmin=0.0, vmax=1.0, aspect="auto")
        axes.set_xticks(range(len(rewards)), rewards, rotation=45, ha="right", fontsize=8)
        axes.set_yticks(range(len(hacks)), hacks, fontsize=7)
        for i in range(len(hacks)):
            for j in range(len(rewards)):
                if not np.isnan(values[i, j]) and values[i, j] > 0:
                    axes.text(j, i, f"{values[i, j]:.0%}", ha="center", va="center", fontsize=6)
        figure.colorbar(image, ax=axes, label="exploit rate (grey: n/a)", shrink=0.5)
        axes.set_title("hack matrix: share of exploit probes credited")
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)


def matrix_of(report: AuditReport, tasks: Sequence[dict[str, Any]], kind: str | None = None) -> Matrix:
    """The matrix row set of one audited reward: a cell for every hack class, from `report`'s
    families; classes that built no probe from `tasks` are n/a with the reason."""
    kind = kind or reward_kind(report.reward, tasks)
    families = {f.family: f for f in report.families}
    task_kinds = {str(t.get("kind", "math")) for t in tasks}
    bound = float(report.settings.get("max_exploit", 0.0))
    cells = []
    for hack in HACKS:
        result = families.get(hack.name)
        if result is None or result.exploit_probes == 0:
            if not report.usable_tasks:
                why = "no usable task: the reward never credits the plain correct answer"
            elif hack.na or not task_kinds & set(hack.tasks):
                why = hack.why_not(task_kinds)
            else:
                why = f"{hack.name} built no probe from these tasks (e.g. no digit in the answers to disguise)"
            cells.append(Cell(hack.name, kind, report.reward, 0, 0, 0.0, "n/a", why))
            continue
        failing = result.exploit_rate > bound
        example = next((e for e in result.examples if e["type"] == "exploit"), None)
        shown = None
        if failing and example is not None:
            shown = {"prompt": example.get("prompt", ""), "completion": example["completion"], "score": example["score"]}
            if example.get("messages") is not None:
                shown["messages"] = example["messages"]
        cells.append(Cell(hack.name, kind, report.reward, result.exploit_probes, result.exploits, result.exploit_rate,
                          "fail" if failing else "pass", (example or {}).get("note", "") if failing else "", shown))
    variants = families.get("correct_variants")
    false_negatives = {}
    if variants is not None and variants.correct_probes:
        false_negatives[report.reward] = {"n": variants.correct_probes, "missed": variants.false_negatives,
                                          "rate": variants.false_negative_rate}
    return Matrix(cells, false_negatives)
