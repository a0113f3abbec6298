"""CHAMP's human first-wrong-step labels (Mao et al. 2024) as a ProcessBench-style step set.

The wheel of PyPI's ``champ-dataset==1.0.0`` ships ``champ_dataset/dataset_files/v0.json``: 270
competition problems, and for each two model solutions (GPT-3.5 / GPT-4 / PaLM 2 ... under
several prompting settings) whose first wrong step a person marked as a character span
(``start_idx``/``end_idx`` into the solution text; none when the solution has no mistake): 540
annotations. The wheel is fetched into payoff's cache and read in place (`cached_wheel`).

Mapping the spans to steps: the solution is split with payoff's one splitter (blank lines by
default), each step located in the text in order (`step_ends`), and the label is the index of
the first step that ends after the span's start, so a span starting in the blank lines between
two steps belongs to the next one. No mistake is label -1. An annotation whose span starts past
the last step cannot be placed and is skipped (counted in the report).
"""

from __future__ import annotations

import json
import zipfile
from typing import Any

from payoff.prm.steps import split_steps, step_ends

WHEEL = "champ_dataset-1.0.0-py3-none-any.whl"
REQUIREMENT = "champ-dataset==1.0.0"
MEMBER = "champ_dataset/dataset_files/v0.json"


def first_wrong_index(text: str, steps: list[str], start: int | None) -> int | None:
    """The step that holds character ``start`` (-1 when ``start`` is None; None if past the end)."""
    if start is None:
        return -1
    for index, end in enumerate(step_ends(text, steps)):
        if end > start:
            return index
    return None


def champ_problems() -> dict[str, dict[str, Any]]:
    """CHAMP's 270 problems by id (text, answer, category, annotations, conversations), read in
    place from the cached wheel."""
    from payoff.tasks.mathdata import cached_wheel

    with zipfile.ZipFile(cached_wheel(WHEEL, REQUIREMENT)) as wheel:
        return json.loads(wheel.read(MEMBER))["problems"]


def champ_rows(split: str = "double_newline") -> tuple[list[dict[str, Any]], dict[str, int]]:
    """ProcessBench rows (``id``, ``problem``, ``steps``, ``label``, ``subset`` = "champ",
    ``reference``: the problem's answer, ``meta``: model and setting) and a count of what was
    read and skipped."""
    rows, counts = [], {"annotations": 0, "rows": 0, "no_steps": 0, "unplaceable": 0, "correct": 0}
    for problem_id, problem in champ_problems().items():
        for setting, annotation in sorted((problem.get("fws_annotations") or {}).items()):
            counts["annotations"] += 1
            text = annotation.get("text") or ""
            steps = split_steps(text, split)
            if not steps:
                counts["no_steps"] += 1
                continue
            label = first_wrong_index(text, steps, annotation.get("start_idx"))
            if label is None:
                counts["unplaceable"] += 1
                continue
            counts["correct"] += int(label == -1)
            model, _, prompting = setting.partition("|")
            rows.append({"id": f"{problem_id}|{setting}", "problem": problem.get("_text") or problem.get("_raw_text"), "steps": steps,
                         "label": label, "subset": "champ", "reference": problem.get("_answer"),
                         "meta": {"model": model, "prompting": prompting, "category": problem.get("category"),
                                  "author": annotation.get("author")}})
    counts["rows"] = len(rows)
    return rows, counts


def champ_conversations(keys: list[str]) -> dict[str, dict[str, Any]]:
    """CHAMP conversations by key ``"<problem id>|<model>|<prompting>"``: the problem (``prompt``,
    ``reference``, ``category``) and the model's last two turns, its full solution (``solution``)
    and its one-sentence summary of it (``summary``). Read in place from the cached wheel; only
    the keys asked for are returned."""
    problems = champ_problems()
    found = {}
    for key in keys:
        problem_id, _, setting = key.partition("|")
        problem = problems[problem_id]
        messages = problem["conversations"][setting]["messages"]
        found[key] = {"prompt": problem.get("_text"), "reference": problem.get("_answer"), "category": problem.get("category"),
                      "solution": messages[-3]["text"], "summary": messages[-1]["text"]}
    return found
