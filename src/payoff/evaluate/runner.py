"""`run_suite`: score a benchmark's answers with any payoff reward through the engine, then apply
the suite's exact scoring (`payoff.evaluate.suites`, `payoff.evaluate.processbench`).

Data schemas (JSONL / JSON / Parquet / datasets folder; `fields` renames columns):
- ``pairs``, ``rewardbench``: ``prompt``, ``chosen``, ``rejected`` (text), optional ``subset``;
- ``rewardbench2``: ``prompt``, ``chosen`` (a list; one answer outside Ties), ``rejected`` (a
  list), ``subset``; Ties rows have ``subset = "Ties"`` and ``id = "ref:N"`` or ``"tied:N"``;
- ``rmbench``: ``prompt``, ``chosen`` and ``rejected``: lists of 3 answers in the styles concise,
  detailed plain, detailed markdown;
- ``rewardmath``: ``prompt``, ``chosen`` (text), ``rejected`` (a list);
- ``processbench``: ``prompt`` (or ``problem``), ``steps`` (a list), ``label`` (first wrong step,
  -1 if none), optional ``subset``. A reward scores each prefix of steps; the prediction is the
  first prefix scoring below ``step_threshold``.
Every row may carry ``reference``, passed to the reward (a verifier needs it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from payoff.core import Outcome, Reward
from payoff.evaluate.bias import bias_report
from payoff.evaluate.processbench import first_wrong_step, processbench_scores
from payoff.evaluate.suites import one_vs_many, pairs_accuracy, rewardbench, rewardbench2, rmbench, wins

SUITES = ("pairs", "rewardbench", "rewardbench2", "rmbench", "rewardmath", "processbench")


class SuiteDataError(ValueError):
    """A data file that does not fit its suite's schema; says which row and why."""


def _rename(row: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    return {**row, **{ours: row[theirs] for ours, theirs in fields.items() if theirs in row}}


def _need(row: dict[str, Any], index: int, key: str, kind: type | tuple[type, ...], size: int | None = None) -> Any:
    if key not in row:
        raise SuiteDataError(f"row {index}: no field {key!r} (fields: {', '.join(row)})")
    value = row[key]
    if not isinstance(value, kind) or (isinstance(value, list) and not all(isinstance(v, str) for v in value)):
        raise SuiteDataError(f"row {index}: {key!r} must be {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    if size is not None and len(value) != size:
        raise SuiteDataError(f"row {index}: {key!r} must hold {size} answers, got {len(value)}")
    return value


class _Batch:
    """Answers to score, each remembered by its place in the suite's rows."""

    def __init__(self) -> None:
        self.samples: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any], completion: str) -> int:
        prompt = row.get("prompt", row.get("problem", ""))
        self.samples.append({"prompt": prompt, "completion": completion, "reference": row.get("reference"),
                             "meta": {"subset": row.get("subset")}})
        return len(self.samples) - 1


def score_answers(samples: list[dict[str, Any]], reward: Reward, workers: int, timeout_s: float | None,
                  on_progress: Callable[[int], None] | None = None) -> list[Outcome]:
    from payoff.engine import Engine

    with Engine(reward, workers=workers, timeout_s=timeout_s) as engine:
        return engine.score(samples, on_progress=on_progress)


def run_suite(suite: str, rows: Sequence[dict[str, Any]], reward: Reward, *, fields: dict[str, str] | None = None,
              workers: int = 2, timeout_s: float | None = None, step_threshold: float = 0.5,
              on_progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """The suite's report: at least ``overall`` and ``subsets`` (and ``sections`` for
    rewardbench), plus ``bias`` for pairwise suites and the outcome counts."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; suites: {', '.join(SUITES)}")
    rows = [_rename(dict(r), fields or {}) for r in rows]
    batch = _Batch()
    plan: list[Any] = []
    for index, row in enumerate(rows):
        if suite in ("pairs", "rewardbench"):
            plan.append((batch.add(row, _need(row, index, "chosen", str)), batch.add(row, _need(row, index, "rejected", str))))
        elif suite == "rewardbench2":
            chosen, rejected = _need(row, index, "chosen", list), _need(row, index, "rejected", list)
            plan.append(([batch.add(row, c) for c in chosen], [batch.add(row, r) for r in rejected]))
        elif suite == "rmbench":
            chosen, rejected = _need(row, index, "chosen", list, 3), _need(row, index, "rejected", list, 3)
            plan.append(([batch.add(row, c) for c in chosen], [batch.add(row, r) for r in rejected]))
        elif suite == "rewardmath":
            plan.append((batch.add(row, _need(row, index, "chosen", str)), [batch.add(row, r) for r in _need(row, index, "rejected", list)]))
        else:
            steps = _need(row, index, "steps", list)
            label = row.get("label")
            if isinstance(label, bool) or not isinstance(label, int) or not -1 <= label < max(1, len(steps)):
                raise SuiteDataError(f"row {index}: 'label' must be -1 or a step index below {len(steps)}, got {label!r}")
            plan.append([batch.add(row, "\n\n".join(steps[: k + 1])) for k in range(len(steps))])
    outcomes = score_answers(batch.samples, reward, workers, timeout_s, on_progress)
    score = [o.score if o.status == "ok" else None for o in outcomes]
    statuses: dict[str, int] = {}
    for outcome in outcomes:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    report: dict[str, Any] = {"suite": suite, "reward": reward.name, "rows": len(rows), "answers": len(outcomes), "statuses": statuses}
    if suite in ("pairs", "rewardbench"):
        scored = [{"chosen_score": score[c], "rejected_score": score[r], "subset": row.get("subset")} for (c, r), row in zip(plan, rows)]
        report.update((pairs_accuracy if suite == "pairs" else rewardbench)(scored))
        lengths = [(len(batch.samples[c]["completion"]), len(batch.samples[r]["completion"])) for c, r in plan]
        report["bias"] = bias_report([s["chosen_score"] for s in scored], [s["rejected_score"] for s in scored], lengths)
        report["_pairs"] = scored
    elif suite == "rewardbench2":
        plain, ties = [], []
        for (chosen, rejected), row in zip(plan, rows):
            if str(row.get("subset")) == "Ties":
                kind, _, key = str(row.get("id", "tied:0")).partition(":")
                ties.append({"kind": "ref" if kind == "ref" else "tied", "id": key, "correct": [score[i] for i in chosen],
                             "incorrect": [score[i] for i in rejected]})
            else:
                if len(chosen) != 1:
                    raise SuiteDataError(f"a {row.get('subset')!r} row must have one chosen answer, got {len(chosen)}")
                plain.append({"chosen_score": score[chosen[0]], "rejected_scores": [score[i] for i in rejected], "subset": row.get("subset")})
        report.update(rewardbench2(plain, ties))
    elif suite == "rmbench":
        report.update(rmbench([{"chosen_scores": [score[i] for i in c], "rejected_scores": [score[i] for i in r],
                                "subset": row.get("subset")} for (c, r), row in zip(plan, rows)]))
    elif suite == "rewardmath":
        report.update(one_vs_many([{"chosen_score": score[c], "rejected_scores": [score[i] for i in r], "subset": row.get("subset")}
                                   for (c, r), row in zip(plan, rows)]))
    else:
        predictions = [first_wrong_step([score[i] for i in prefixes], step_threshold) for prefixes in plan]
        report.update(processbench_scores([{"label": row["label"], "prediction": p, "subset": row.get("subset")}
                                           for row, p in zip(rows, predictions)]))
        report["step_threshold"] = step_threshold
    report["_items"] = _items(suite, rows, plan, batch.samples, score, report.get("step_threshold", step_threshold))
    return report


def _items(suite: str, rows: list[dict[str, Any]], plan: list[Any], samples: list[dict[str, Any]], score: list[float | None],
           step_threshold: float) -> list[dict[str, Any]]:
    """One line per row for `write_report`'s items.jsonl: its answers, their scores and whether the
    reward ranked it right (a tie or an unscored answer is wrong, as the suites count it), so a
    viewer can list what the reward got wrong in each subset."""
    items = []
    for index, (row, entry) in enumerate(zip(rows, plan)):
        item: dict[str, Any] = {"row": index, "subset": row.get("subset"), "prompt": row.get("prompt", row.get("problem", ""))}
        if suite == "processbench":
            predicted = first_wrong_step([score[i] for i in entry], step_threshold)
            item.update(steps=row["steps"], label=row["label"], prediction=predicted, step_scores=[score[i] for i in entry],
                        correct=predicted == row["label"])
        else:
            chosen, rejected = ([c] if isinstance(c, int) else c for c in entry)
            item.update(chosen=[samples[i]["completion"] for i in chosen], rejected=[samples[i]["completion"] for i in rejected],
                        chosen_scores=[score[i] for i in chosen], rejected_scores=[score[i] for i in rejected])
            lowest = [score[i] for i in chosen]
            if suite == "rmbench":  # each style of the chosen answer against the same style rejected
                item["correct"] = all(wins(c, r) for c, r in zip(lowest, item["rejected_scores"]))
            else:
                item["correct"] = all(wins(c, r) for c in lowest for r in item["rejected_scores"])
        items.append(item)
    return items


def load_suite_rows(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    from payoff.tasks.loader import read_table

    rows = read_table(path)
    return rows[:limit] if limit else rows
