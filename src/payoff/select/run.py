"""`payoff select`: read (or generate) N candidates per prompt, score them with a reward and a gold
reward through the engine, cluster their answers, and draw the scaling curves.

Candidate files hold either one row per prompt (``prompt``, ``reference``, ``completions``: a list
of strings, optional parallel lists ``scores``, ``self_certainty``, ``tokens``) or one row per
candidate (``prompt``, ``reference``, ``completion``, ``group``, optional ``score``,
``self_certainty``, ``tokens`` or ``meta.tokens``), as `payoff rm sample` writes.

Candidates may be episodes (``messages``, as `payoff rm sample --env` writes, or drawn here by
`episode_candidates`): the methods pick among them by their final assistant text (the
``completion``, clustered for the votes) and their scores; a reward given to select scores the
whole episode (its ``messages`` and ``meta.tools`` go to the engine). An episode whose row says
``status`` other than ``ok`` (an environment failed) is kept as a candidate with no score that is
never correct: it is counted under ``episode/<status>`` and sent to no reward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from payoff.core import Reward


def group_candidates(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    prompts: list[dict[str, Any]] = []
    by_group: dict[str, dict[str, Any]] = {}
    for index, row in enumerate(rows):
        if isinstance(row.get("completions"), list):
            extras = {key: row.get(plural) for key, plural in (("score", "scores"), ("self_certainty", "self_certainty"), ("tokens", "tokens"))}
            candidates = []
            for k, completion in enumerate(row["completions"]):
                candidate = {"completion": str(completion)}
                for key, values in extras.items():
                    if isinstance(values, list) and k < len(values):
                        candidate[key] = values[k]
                candidates.append(candidate)
            prompts.append({"prompt": row.get("prompt", ""), "reference": row.get("reference"), "candidates": candidates})
            continue
        if not isinstance(row.get("completion"), str):
            raise ValueError(f"row {index}: needs 'completions' (a list) or 'completion' (a string)")
        key = repr(row.get("group", row.get("prompt")))
        if key not in by_group:
            by_group[key] = {"prompt": row.get("prompt", ""), "reference": row.get("reference"), "candidates": []}
            prompts.append(by_group[key])
        tokens = row.get("tokens", (row.get("meta") or {}).get("tokens"))
        candidate = {"completion": row["completion"], "tokens": tokens}
        for key_name in ("score", "self_certainty", "step_scores"):
            if row.get(key_name) is not None:
                candidate[key_name] = row[key_name]
        if "score" not in candidate and isinstance(row.get("reward"), (int, float)):  # payoff score / rm sample rows
            candidate["score"] = row["reward"]
        if row.get("messages") is not None:  # an episode: the reward reads all of it
            candidate.update({"messages": row["messages"], "meta": row.get("meta") or {}})
        if row.get("status", "ok") != "ok":
            candidate.update({"failed": row["status"], "score": None})
        by_group[key]["candidates"].append(candidate)
    return prompts


def _score_all(prompts: list[dict[str, Any]], reward: Reward, workers: int, timeout_s: float | None = None) -> list[Any]:
    """The outcome of every candidate that did not fail (in order; None for those that did)."""
    from payoff.engine import Engine

    samples = [{"prompt": p["prompt"], "completion": c["completion"], "reference": p["reference"], "group": number,
                **({"messages": c["messages"], "meta": c.get("meta") or {}} if c.get("messages") is not None else {})}
               for number, p in enumerate(prompts) for c in p["candidates"] if "failed" not in c]
    with Engine(reward, workers=workers, timeout_s=timeout_s) as engine:
        outcomes = iter(engine.score(samples))
    return [None if "failed" in c else next(outcomes) for p in prompts for c in p["candidates"]]


def prepare(prompts: list[dict[str, Any]], reward: Reward | None, gold: Reward, workers: int = 2, gold_threshold: float = 1.0,
            timeout_s: float | None = None) -> dict[str, int]:
    """Fill each candidate's ``score`` (from ``reward``, when given), ``correct`` (gold >=
    threshold) and ``answer`` (math-equivalence cluster). Returns outcome counts per status."""
    from payoff.select.cluster import cluster_answers

    statuses: dict[str, int] = {}
    flat = [c for p in prompts for c in p["candidates"]]
    for candidate in flat:
        if "failed" in candidate:
            statuses[f"episode/{candidate['failed']}"] = statuses.get(f"episode/{candidate['failed']}", 0) + 1
    if reward is not None:
        for candidate, outcome in zip(flat, _score_all(prompts, reward, workers, timeout_s)):
            if outcome is not None:
                candidate["score"] = outcome.score if outcome.status == "ok" else None
                statuses[f"reward/{outcome.status}"] = statuses.get(f"reward/{outcome.status}", 0) + 1
    for candidate, outcome in zip(flat, _score_all(prompts, gold, workers, timeout_s)):
        candidate["correct"] = outcome is not None and outcome.status == "ok" and outcome.score is not None and outcome.score >= gold_threshold
        if outcome is not None:
            statuses[f"gold/{outcome.status}"] = statuses.get(f"gold/{outcome.status}", 0) + 1
    for prompt in prompts:
        for candidate, cluster in zip(prompt["candidates"], cluster_answers([c["completion"] for c in prompt["candidates"]])):
            candidate["answer"] = cluster
    return statuses


def generate_candidates(tasks: Sequence[dict[str, Any]], n: int, policy: str = "smollm2-135m-instruct", max_new_tokens: int = 64,
                        temperature: float = 1.0, seed: int = 0, batch_size: int = 32) -> list[dict[str, Any]]:
    """N sampled completions per task from a local policy, each with its token count and its
    self-certainty (token-mean KL(U || p), from one teacher-forced pass over prompt+completion)."""
    import torch

    from payoff.models.default import load_policy
    from payoff.models.rollout import HFGenerator, SamplingParams, render_prompt
    from payoff.select.methods import self_certainty

    torch.manual_seed(seed)
    model, tokenizer = load_policy(policy)
    model.eval()
    generator = HFGenerator(model, tokenizer, batch_size=batch_size)
    prompts = []
    for task in tasks:
        text = render_prompt(tokenizer, task["prompt"])
        rollouts = generator.generate([text] * n, SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature))
        candidates = []
        for prompt_ids, completion_ids, completion in zip(rollouts.prompt_ids, rollouts.completion_ids, rollouts.texts):
            with torch.no_grad():
                ids = torch.tensor([prompt_ids + completion_ids])
                logits = model(ids).logits[0, len(prompt_ids) - 1:-1].float() if completion_ids else torch.zeros(0, 1)
            certainty = self_certainty(torch.log_softmax(logits, -1)) if completion_ids else 0.0
            candidates.append({"completion": completion, "tokens": len(completion_ids), "self_certainty": certainty})
        prompts.append({"prompt": task["prompt"], "reference": task.get("reference"), "candidates": candidates})
    return prompts


def episode_candidates(tasks: Sequence[dict[str, Any]], n: int, generator: Any, tokenizer: Any, make_env: Any, limits: Any,
                       reward: Reward | None, max_new_tokens: int = 64, temperature: float = 1.0, seed: int = 0, env_workers: int = 8,
                       workers: int = 2, timeout_s: float | None = None) -> list[dict[str, Any]]:
    """N episodes per task from a policy in an environment (`payoff.models.draw`), grouped as
    candidates. With `reward` (the environment's own, when select was given none) each episode's
    outcome is its ``score``; without, `prepare` scores them with select's reward."""
    from payoff.models.draw import draw_episodes, score_episodes
    from payoff.models.rollout import SamplingParams

    drawn = draw_episodes(generator, tokenizer, tasks, n, make_env, SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature),
                          limits, seed, workers=env_workers)
    if reward is not None:
        rows = score_episodes(drawn, reward, workers, timeout_s)
    else:
        rows = [{**row, "status": failed.status if failed is not None else "ok"} for row, failed in drawn]
    return group_candidates(rows)
