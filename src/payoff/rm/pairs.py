"""Preference pairs from a verifier: chosen / rejected within each prompt's group of scored samples
(Cobbe et al. 2021's outcome verifiers; the way a program reward becomes an outcome RM).

Input rows are any scored JSONL: ``payoff score`` output (``reward``, ``status``), the rows
``payoff rm sample`` writes, or a trainer's samples (``reward``). An episode (a row with
``messages``, as ``payoff rm sample --env`` writes) is paired by what the ``reward_model`` reward
later reads of it: its prompt (the opening messages when the row gives none) and its final
assistant text; chosen and rejected are those final texts. A row's group is its ``group``
field, else its prompt; pairs are made within (group, prompt) only, so two answers to different
prompts are never compared, and a row whose prompt differs from the first prompt of its group is
reported (``off_prompt``: the count, ``off_prompt_rows``: the first few). Only ``ok`` rows take part: an error or a timeout is not a wrong answer,
so such rows are counted and left out, never used as the rejected side.

Modes:
- ``correct``: every correct (score >= threshold) x incorrect pair of a group;
- ``margin``: every pair whose scores differ by at least ``min_margin``, the higher one chosen
  (the difference is written as the pair's ``margin`` with ``keep_margin``);
- with ``ties``, pairs of equal score (within a group, distinct completions) are written too,
  marked ``tie = true``.
``max_per_prompt`` balances prompts: each keeps at most that many pairs, drawn with the seed.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from payoff.core import Sample, SampleError


@dataclass
class PairsReport:
    rows: int = 0
    groups: int = 0
    groups_with_pairs: int = 0
    pairs: int = 0
    ties: int = 0
    left_out: dict[str, int] = field(default_factory=dict)
    off_prompt: int = 0  # rows whose prompt differs from their group's first prompt (paired within their own prompt)
    off_prompt_rows: list[str] = field(default_factory=list)  # the first five, as "line N" / "row N"

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _score(row: dict[str, Any]) -> float | None:
    for key in ("reward", "score"):
        value = row.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _group_key(row: dict[str, Any]) -> str:
    group = row.get("group")
    return _key(group if group is not None else row.get("prompt"))


def build_pairs(rows: Iterable[dict[str, Any]], mode: str = "correct", threshold: float = 1.0, min_margin: float = 0.0,
                max_per_prompt: int | None = None, ties: bool = False, keep_margin: bool = False,
                seed: int = 0, where: Sequence[str] | None = None) -> tuple[list[dict[str, Any]], PairsReport]:
    """Pairs in TRL's preference format (``prompt``, ``chosen``, ``rejected``, optional ``margin``
    and ``tie``, and ``meta``) and the report of what went in and what was left out. ``where``:
    each row's place in its file ("line 3"), to name rows in the report (else "row N", from 1)."""
    if mode not in ("correct", "margin"):
        raise ValueError("mode must be 'correct' or 'margin'")
    report = PairsReport()
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    first_prompt: dict[str, str] = {}
    for index, row in enumerate(rows):
        report.rows += 1
        status = row.get("status", "ok")
        score = _score(row)
        if status != "ok" or score is None:
            reason = status if status != "ok" else "no score"
            report.left_out[reason] = report.left_out.get(reason, 0) + 1
            continue
        if row.get("messages") is not None:
            try:
                row = _episode_fields(row)
            except SampleError:
                report.left_out["malformed episode"] = report.left_out.get("malformed episode", 0) + 1
                continue
        if not isinstance(row.get("completion"), str) or row.get("prompt") is None:
            report.left_out["no prompt or completion"] = report.left_out.get("no prompt or completion", 0) + 1
            continue
        group, prompt = _group_key(row), _key(row["prompt"])
        if first_prompt.setdefault(group, prompt) != prompt:
            report.off_prompt += 1
            if len(report.off_prompt_rows) < 5:
                report.off_prompt_rows.append(where[index] if where is not None else f"row {index + 1}")
        groups.setdefault((group, prompt), []).append({**row, "_score": score})
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    report.groups = len(groups)
    for (group, _), members in groups.items():
        made = _group_pairs(members, mode, threshold, min_margin, ties, keep_margin)
        if max_per_prompt is not None and len(made) > max_per_prompt:
            made = rng.sample(made, max_per_prompt)
        if made:
            report.groups_with_pairs += 1
        for pair in made:
            pair["meta"]["group"] = group
        out.extend(made)
    report.pairs = len(out)
    report.ties = sum(1 for p in out if p.get("tie"))
    return out, report


def _episode_fields(row: dict[str, Any]) -> dict[str, Any]:
    """An episode row with ``prompt`` and ``completion`` as its Sample has them (the given ones,
    else the opening messages and the final assistant text); SampleError when malformed."""
    sample = Sample.from_dict(row)
    return {**row, "prompt": sample.prompt, "completion": sample.completion}


def _group_pairs(members: Sequence[dict[str, Any]], mode: str, threshold: float, min_margin: float, ties: bool,
                 keep_margin: bool) -> list[dict[str, Any]]:
    made = []
    seen: set[tuple[str, str]] = set()
    for a, b in itertools.combinations(members, 2):
        if a["completion"] == b["completion"]:
            continue  # a pair of identical answers teaches nothing
        high, low = (a, b) if a["_score"] >= b["_score"] else (b, a)
        gap = high["_score"] - low["_score"]
        if mode == "correct":
            preferred = (high["_score"] >= threshold) and (low["_score"] < threshold)
            tied = (high["_score"] >= threshold) == (low["_score"] >= threshold)
        else:
            preferred = gap > 0 and gap >= min_margin
            tied = gap == 0
        if not preferred and not (ties and tied):
            continue
        key = (high["completion"], low["completion"])
        if key in seen:
            continue
        seen.add(key)
        pair: dict[str, Any] = {"prompt": high["prompt"], "chosen": high["completion"], "rejected": low["completion"],
                                "meta": {"chosen_score": high["_score"], "rejected_score": low["_score"]}}
        if not preferred:
            pair["tie"] = True
        elif keep_margin:
            pair["margin"] = gap
        made.append(pair)
    return made


def sample_completions(rows: list[dict[str, Any]], n: int, policy: str = "smollm2-135m-instruct", max_new_tokens: int = 64,
                       temperature: float = 1.0, seed: int = 0, batch_size: int = 32, chat_template: bool = True,
                       on_progress: Any = None) -> list[dict[str, Any]]:
    """``n`` sampled completions per task row from a local policy, one output row per completion
    with the row's ``group`` (its index), ready to be scored and paired."""
    import torch

    from payoff.models.default import load_policy
    from payoff.models.rollout import HFGenerator, SamplingParams, render_prompt

    torch.manual_seed(seed)
    model, tokenizer = load_policy(policy)
    model.eval()
    generator = HFGenerator(model, tokenizer, batch_size=batch_size)
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature)
    out = []
    for start in range(0, len(rows), max(1, batch_size // n)):
        chunk = rows[start:start + max(1, batch_size // n)]
        texts = [render_prompt(tokenizer, row["prompt"], chat_template) for row in chunk for _ in range(n)]
        rollouts = generator.generate(texts, params)
        for k, text in enumerate(rollouts.texts):
            row = chunk[k // n]
            out.append({"prompt": row["prompt"], "completion": text, "reference": row.get("reference", row.get("answer")),
                        "group": start + k // n, "meta": {**row.get("meta", {}), "sample": k % n,
                                                          "tokens": len(rollouts.completion_ids[k]), "truncated": rollouts.truncated[k]}})
        if on_progress is not None:
            on_progress(len(chunk))
    return out
