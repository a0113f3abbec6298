"""Offline rescoring: stored rollouts scored again with reward variants, and how they disagree.

For each pair of rewards (A, B), over rollouts both scored:
- Cohen's kappa on pass/fail (score >= threshold): (p_o - p_e) / (1 - p_e), p_o the observed
  agreement, p_e the agreement expected from the two pass rates alone (undefined when p_e = 1);
- Spearman's rho on the scores (Pearson on average ranks, ties sharing their mean rank);
- the 2x2 confusion table and the rollouts where they disagree;
- what training would have seen: per prompt group, GRPO's advantages (r - mean) / std under A
  and under B; ``advantage_sign_changes`` is the share of groups in which some rollout's advantage
  has a different sign (+, 0, -) under B than under A.
A group is the row's ``group``, else (``step``, ``prompt``) for a trainer's samples.jsonl.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from payoff.episode import EpisodeError, check_messages, final_text


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    from payoff.engine.stats import pearson

    return pearson(ranks(a), ranks(b)) if len(a) > 1 else None


def _sign(x: float) -> int:
    return 0 if abs(x) < 1e-12 else (1 if x > 0 else -1)


def group_advantages(scores: Sequence[float], groups: Sequence[Any]) -> list[float]:
    """GRPO's (r - mean_group) / (std_group + 1e-6), population std."""
    members: dict[Any, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    out = [0.0] * len(scores)
    for indices in members.values():
        values = [scores[i] for i in indices]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        for i in indices:
            out[i] = (scores[i] - mean) / (std + 1e-6)
    return out


def compare(name_a: str, a: Sequence[float | None], name_b: str, b: Sequence[float | None], rows: Sequence[dict[str, Any]],
            threshold: float, examples: int) -> dict[str, Any]:
    both = [i for i in range(len(rows)) if a[i] is not None and b[i] is not None]
    pa = [a[i] >= threshold for i in both]  # type: ignore[operator]
    pb = [b[i] >= threshold for i in both]  # type: ignore[operator]
    confusion = {"pass_pass": 0, "pass_fail": 0, "fail_pass": 0, "fail_fail": 0}
    for x, y in zip(pa, pb):
        confusion[f"{'pass' if x else 'fail'}_{'pass' if y else 'fail'}"] += 1
    disagree = [i for i, x, y in zip(both, pa, pb) if x != y]
    groups = [_group(rows[i]) for i in both]
    adv_a = group_advantages([a[i] for i in both], groups)  # type: ignore[misc]
    adv_b = group_advantages([b[i] for i in both], groups)  # type: ignore[misc]
    changed: dict[Any, bool] = {}
    for g, x, y in zip(groups, adv_a, adv_b):
        changed[g] = changed.get(g, False) or _sign(x) != _sign(y)
    return {
        "a": name_a, "b": name_b, "rollouts": len(both), "unscored": len(rows) - len(both),
        "kappa": cohen_kappa(pa, pb), "spearman": spearman([a[i] for i in both], [b[i] for i in both]),  # type: ignore[misc]
        "agreement": sum(x == y for x, y in zip(pa, pb)) / len(both) if both else 0.0, "confusion": confusion,
        "advantage_sign_changes": sum(changed.values()) / len(changed) if changed else None, "groups": len(changed),
        "disagreements": _disagreements(disagree, both, rows, (name_a, a, adv_a), (name_b, b, adv_b), groups, examples),
    }


def _disagreements(disagree: list[int], both: list[int], rows: Sequence[dict[str, Any]], side_a: tuple, side_b: tuple,
                   groups: list[Any], examples: int) -> list[dict[str, Any]]:
    """The rollouts A and B disagree on, most changed training signal first: ``signal_change`` is
    |advantage under A - advantage under B| (GRPO's, within the rollout's group)."""
    (name_a, a, adv_a), (name_b, b, adv_b) = side_a, side_b
    place = {i: k for k, i in enumerate(both)}
    found = [{"completion": _answer_text(rows[i])[:300], "reference": rows[i].get("reference"), "group": groups[place[i]],
              name_a: a[i], name_b: b[i], "advantages": {name_a: adv_a[place[i]], name_b: adv_b[place[i]]},
              "signal_change": abs(adv_a[place[i]] - adv_b[place[i]])} for i in disagree]
    found.sort(key=lambda d: -d["signal_change"])
    return found[:examples]


def _group(row: dict[str, Any]) -> Any:
    if row.get("group") is not None:
        return json.dumps(row["group"], default=str)
    return json.dumps([row.get("step"), row.get("prompt")], default=str)


def _resolve(spec: str) -> Any:
    from payoff.registry import get_reward

    if spec.endswith(".toml"):
        from payoff.compose import load_rubric

        return load_rubric(spec)
    return get_reward(spec)


def _answer_text(row: dict[str, Any]) -> str:
    """The row's completion, or its episode's final assistant text."""
    if "completion" in row or "messages" not in row:
        return str(row.get("completion", ""))
    try:
        return final_text(check_messages(row["messages"]))
    except EpisodeError:
        return ""


def rescore(path: str | Path, specs: Sequence[str], threshold: float = 0.5, workers: int = 2, examples: int = 5,
            timeout_s: float | None = None) -> dict[str, Any]:
    from payoff.engine import Engine
    from payoff.io import answer_fields, read_records

    lines, _ = read_records(path)
    rows = [line.record for line in lines if line.record is not None
            and (isinstance(line.record.get("completion"), str) or isinstance(line.record.get("messages"), list))]
    if not rows:
        raise ValueError(f"{path}: no rows with a completion")
    scores: dict[str, list[float | None]] = {}
    stored = [r.get("reward", r.get("score")) for r in rows]
    if any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in stored):
        scores["stored"] = [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in stored]
    for spec in specs:
        reward = _resolve(spec)
        samples = [{"prompt": r.get("prompt", ""), **answer_fields(r), "reference": r.get("reference"),
                    "group": r.get("group"), "meta": r.get("meta") or {}} for r in rows]
        with Engine(reward, workers=workers, timeout_s=timeout_s) as engine:
            outcomes = engine.score(samples)
        name = spec if spec not in scores else f"{spec}#{len(scores)}"
        scores[name] = [o.score if o.status == "ok" else None for o in outcomes]
    names = list(scores)
    pairs = [compare(x, scores[x], y, scores[y], rows, threshold, examples) for i, x in enumerate(names) for y in names[i + 1:]]
    means = {n: (sum(v for v in s if v is not None) / max(1, sum(v is not None for v in s))) for n, s in scores.items()}
    return {"rollouts": len(rows), "rewards": names, "mean_score": means, "threshold": threshold, "pairs": pairs}


def write_rescore(result: dict[str, Any], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(result, indent=1, default=repr))
    lines = ["# payoff rescore", "", f"{result['rollouts']} rollouts; pass = score >= {result['threshold']}", "",
             "| A | B | kappa | spearman | agreement | groups whose advantages change sign |", "|---|---|---|---|---|---|"]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for p in result["pairs"]:
        cells = [p["a"], p["b"], fmt(p["kappa"]), fmt(p["spearman"]), fmt(p["agreement"]), fmt(p["advantage_sign_changes"])]
        lines.append("| " + " | ".join(cells) + " |")
    for p in result["pairs"]:
        lines += ["", f"## {p['a']} vs {p['b']}", "", f"confusion: {p['confusion']}", ""]
        lines += [f"- `{d['completion'][:120]!r}` (reference {d['reference']!r}): {p['a']} {d[p['a']]}, {p['b']} {d[p['b']]}"
                  for d in p["disagreements"]]
    (folder / "report.md").write_text("\n".join(lines) + "\n")
    return [folder / "report.json", folder / "report.md"]
