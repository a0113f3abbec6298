"""The report views: rescore disagreements ranked by the change in training signal, the audit (its
families and the hack matrix) with the probe that got through, and eval reports side by side
with the items each reward got wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from payoff.view.sources import Source, read_report


def disagreements(source: Source) -> dict[str, Any]:
    """Every disagreement of every `payoff rescore` report, most changed training signal first:
    the stored ``signal_change`` (|advantage under A - under B|), else |score A - score B|."""
    found = []
    pairs = []
    for path in source.rescores:
        report = read_report(path)
        for pair in report.get("pairs", []):
            a, b = pair.get("a"), pair.get("b")
            pairs.append({"report": report["name"], **{k: v for k, v in pair.items() if k != "disagreements"}})
            for item in pair.get("disagreements", []):
                score_a, score_b = item.get(a), item.get(b)
                change = item.get("signal_change")
                measure = "advantage" if isinstance(change, (int, float)) else "score"
                if measure == "score":
                    change = abs(score_a - score_b) if isinstance(score_a, (int, float)) and isinstance(score_b, (int, float)) else 0.0
                group = item.get("group")
                try:  # rescore keeps a group as its JSON text: the viewer links the group by its key
                    group = json.loads(group) if isinstance(group, str) else group
                except ValueError:
                    pass
                found.append({"report": report["name"], "a": a, "b": b, "score_a": score_a, "score_b": score_b,
                              "advantages": item.get("advantages"), "signal_change": change, "measure": measure,
                              "completion": item.get("completion"), "reference": item.get("reference"),
                              "group": group if isinstance(group, str) else None})
    found.sort(key=lambda d: -(d["signal_change"] or 0.0))
    return {"pairs": pairs, "disagreements": found}


def audit(source: Source) -> dict[str, Any]:
    """The audit reports (families: exploit and false-negative rates, the failing examples) and
    the hack matrices (``cells``: hack x reward, each with the probe that got through)."""
    reports = []
    for path in source.audits:
        report = read_report(path)
        reports.append({key: report.get(key) for key in ("name", "path", "reward", "verdict", "tasks", "usable_tasks", "reasons",
                                                         "settings", "families", "unusable_references", "constant_reward")})
    matrices = []
    for path in source.matrices:
        matrix = read_report(path)
        cells = [cell for cell in matrix.get("cells", []) if isinstance(cell, dict)]
        matrices.append({"name": matrix["name"], "path": matrix["path"], "hacks": _ordered(c.get("hack") for c in cells),
                         "rewards": _ordered(c.get("reward") for c in cells), "cells": cells,
                         "false_negatives": matrix.get("false_negatives") or {}})
    return {"reports": reports, "matrices": matrices}


def _ordered(values: Any) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def evals(source: Source) -> dict[str, Any]:
    """Each eval report's headline numbers, and a table of subsets x reports (rewards)."""
    reports = []
    for number, path in enumerate(source.evals):
        report = read_report(path)
        reports.append({"id": number, "name": report["name"], "reward": report.get("reward"), "suite": report.get("suite"),
                        "overall": report.get("overall"), "subsets": report.get("subsets") or {}, "sections": report.get("sections"),
                        "counts": report.get("counts"), "statuses": report.get("statuses"),
                        "items": (path.parent / "items.jsonl").is_file()})
    subsets = _ordered(s for r in reports for s in r["subsets"])
    return {"reports": reports, "subsets": subsets}


def eval_items(source: Source, report: int, subset: str | None, wrong_only: bool, page: int, size: int) -> dict[str, Any]:
    """A page of one eval report's items (its items.jsonl, read line by line, never whole), in one
    subset, or only those the reward got wrong."""
    if not 0 <= report < len(source.evals):
        raise LookupError(f"no eval report {report}")
    path = Path(source.evals[report]).parent / "items.jsonl"
    if not path.is_file():
        raise LookupError(f"{path.parent}: no items.jsonl (written by `payoff eval --report` since the viewer)")
    total, rows = 0, []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if subset is not None and str(item.get("subset") or "all") != subset:
                continue
            if wrong_only and item.get("correct"):
                continue
            if page * size <= total < (page + 1) * size:
                rows.append(item)
            total += 1
    return {"total": total, "page": page, "size": size, "rows": rows}
