"""Automatic step labels without humans: Math-Shepherd (Wang et al. 2024) and PAV progress
(Setlur et al. 2024).

For each solution and each step k, N continuations are sampled from the prefix ending at step k
and verified by any payoff reward through the engine. The soft label is the fraction that reach a
correct answer (an estimate of P(correct | prefix)); the hard label is whether any does. PAV's
progress label is the change of that estimate from the previous prefix (the prompt alone before
step 0): soft_k - soft_{k-1}.

Generation is batched across prefixes and solutions: solutions are taken in chunks whose
uncached prefixes fill about one generation batch (``batch_size`` prompts), and all their
continuations are generated and verified together. Each prefix's verdicts are cached by (policy,
prefix, N, max_new_tokens, temperature, seed), so a rerun after a kill generates only what is
missing; the output is written solution by solution and a rerun skips what is written. The report
counts the prefixes, the continuations and the generated tokens.

A solution is a row's ``completions`` or ``steps`` (a list of step texts: TRL's PRM format, `payoff
prm bench`), or its ``completion`` text (what `payoff score` and `payoff rm sample` write) split by
the one step splitter (`payoff.prm.steps.split_steps`). A row with none of these is left out and
reported by its line (``skipped``), never a traceback.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from payoff.core import Reward
from payoff.prm.steps import split_steps


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _load_cache(path: Path | None) -> dict[str, list[bool]]:
    if path is None or not path.exists():
        return {}
    cache = {}
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
            cache[row["key"]] = row["correct"]
        except (ValueError, KeyError):
            continue  # a line cut by a kill
    return cache


def solution_steps(row: Any, split: str = "double_newline") -> list[str] | str:
    """A row's steps (see the module's docstring), or why it has none."""
    if not isinstance(row, dict):
        return "not an object"
    if "prompt" not in row:
        return "no 'prompt'"
    for key in ("completions", "steps"):
        if key in row:
            steps = row[key]
            if not isinstance(steps, list) or not steps or not all(isinstance(step, str) for step in steps):
                return f"'{key}' is not a non-empty list of step texts"
            return list(steps)
    if "completion" in row:
        if not isinstance(row["completion"], str):
            return "'completion' is not text"
        return split_steps(row["completion"], split) or "'completion' holds no step"
    return "no 'completions', 'steps' or 'completion'"


def math_shepherd(rows: Sequence[dict[str, Any]], reward: Reward, rollouts: int = 8, policy: str = "smollm2-135m-instruct",
                  max_new_tokens: int = 96, temperature: float = 1.0, seed: int = 0, out: Path | None = None,
                  cache: Path | None = None, separator: str = "\n\n", workers: int = 2, batch_size: int = 32,
                  on_progress: Callable[[int], None] | None = None, split: str = "double_newline",
                  where: Sequence[str] | None = None, timeout_s: float | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows in TRL's PRM format (``prompt``, ``completions`` = steps, ``labels`` = soft labels in
    [0, 1], plus ``hard_labels``, ``progress``, ``reference``) and the cost report. ``split``: the
    `split_steps` mode for rows that give one ``completion`` text; ``where``: each row's place in
    its file ("line 3"), to name the rows left out in ``report["skipped"]`` (else "row N", from 1)."""
    import torch

    from payoff.engine import Engine
    from payoff.models.default import load_policy
    from payoff.models.rollout import HFGenerator, SamplingParams, render_prompt

    done: dict[int, dict[str, Any]] = {}
    if out is not None and out.exists():
        for line in out.read_text().splitlines():
            try:
                row = json.loads(line)
                done[row["meta"]["index"]] = row
            except (ValueError, KeyError):
                continue
    solutions: dict[int, list[str]] = {}
    skipped = []
    for index, row in enumerate(rows):
        found = solution_steps(row, split)
        if isinstance(found, str):
            skipped.append(f"{where[index] if where is not None else f'row {index + 1}'}: {found}")
        else:
            solutions[index] = found
    verdicts = _load_cache(cache)
    torch.manual_seed(seed)
    model, tokenizer = load_policy(policy)
    model.eval()
    generator = HFGenerator(model, tokenizer, batch_size=batch_size)
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature)
    report = {"solutions": len(rows), "resumed": len(done), "continuations": 0, "generated_tokens": 0, "cached_prefixes": 0,
              "prefixes": 0, "skipped": skipped}
    results: dict[int, dict[str, Any]] = dict(done)
    todo = deque(index for index in solutions if index not in done)
    with Engine(reward, workers=workers, timeout_s=timeout_s) as engine:
        # Solutions are taken in chunks whose uncached prefixes fill about one generation batch:
        # every continuation of every prefix of the chunk goes to the generator together.
        while todo:
            chunk, pending, queued = [], [], set()
            while todo and (not chunk or len(pending) * rollouts < batch_size):
                index = todo.popleft()
                row = rows[index]
                steps = solutions[index]
                head = render_prompt(tokenizer, row["prompt"])
                prefixes = [""] + [separator.join(steps[: k + 1]) + separator for k in range(len(steps))]
                keys = [_key(policy, head, prefix, rollouts, max_new_tokens, temperature, seed) for prefix in prefixes]
                report["prefixes"] += len(keys)
                report["cached_prefixes"] += sum(key in verdicts for key in keys)
                for prefix, key in zip(prefixes, keys):
                    if key not in verdicts and key not in queued:  # each uncached prefix generated once
                        queued.add(key)
                        pending.append((row, head, prefix, key))
                chunk.append((index, row, steps, keys))
            if pending:
                texts = generator.generate([head + prefix for _, head, prefix, _ in pending for _ in range(rollouts)], params)
                report["continuations"] += len(texts.texts)
                report["generated_tokens"] += sum(len(ids) for ids in texts.completion_ids)
                samples = [{"prompt": row["prompt"], "completion": prefix + texts.texts[k * rollouts + j], "reference": row.get("reference")}
                           for k, (row, _, prefix, _) in enumerate(pending) for j in range(rollouts)]
                outcomes = engine.score(samples)
                for k, (_, _, _, key) in enumerate(pending):
                    verdicts[key] = [o.status == "ok" and o.score is not None and o.score >= 1.0
                                     for o in outcomes[k * rollouts:(k + 1) * rollouts]]
                    if cache is not None:
                        with open(cache, "a") as handle:
                            handle.write(json.dumps({"key": key, "correct": verdicts[key]}) + "\n")
            for index, row, steps, keys in chunk:
                estimates = [sum(verdicts[key]) / len(verdicts[key]) for key in keys]
                soft = estimates[1:]
                labelled = {"prompt": row["prompt"], "completions": steps, "labels": soft, "hard_labels": [s > 0 for s in soft],
                            "progress": [b - a for a, b in zip(estimates[:-1], estimates[1:])], "p_correct_from_prompt": estimates[0],
                            "reference": row.get("reference"), "meta": {"index": index, "truth": row.get("label")}}
                results[index] = labelled
                if out is not None:
                    with open(out, "a") as handle:
                        handle.write(json.dumps(labelled) + "\n")
                if on_progress is not None:
                    on_progress(1)
    return [results[index] for index in range(len(rows)) if index in results], report


def agreement_with_truth(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How the automatic labels match planted first-wrong steps (rows with ``meta.truth``): the
    share of solutions whose first hard-label False is the planted step (or none for a correct
    one), and the per-step agreement of hard labels with the truth (a step is right iff before
    the planted error)."""
    exact, steps, agree = 0, 0, 0
    for row in rows:
        truth = row["meta"].get("truth")
        if truth is None:
            continue
        hard = row["hard_labels"]
        predicted = next((k for k, value in enumerate(hard) if not value), -1)
        exact += predicted == truth
        for k, value in enumerate(hard):
            steps += 1
            agree += value == (truth == -1 or k < truth)
    counted = sum(1 for row in rows if row["meta"].get("truth") is not None)
    return {"solutions": counted, "first_wrong_step_exact": exact / counted if counted else None,
            "step_agreement": agree / steps if steps else None}
