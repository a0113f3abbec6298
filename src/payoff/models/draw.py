"""Episodes drawn for the tools that are not trainers (`payoff select`, `payoff rm sample`): a
policy plus an environment plays N episodes per task row (`payoff.models.episodes.play`), each
becomes one JSONL-ready row, and each is scored as one episode outcome.

A row is what `payoff score` reads back: ``messages`` (the whole trajectory), ``completion`` (its
final assistant text), ``prompt`` (the opening messages), ``reference``, ``group`` (the task row's
index) and ``meta`` (``tools``: the schemas offered; ``sample``: which of the N; ``turns``,
``tool_calls``, ``tool_errors``, ``ended``, ``tokens``: the tokens the policy sampled,
``env_tokens``). An episode that cannot be scored (an environment failed, no turn was played, the
trajectory is malformed) keeps its messages in ``meta["messages"]`` and gets an ``error`` outcome
that says why; it is never scored as a wrong answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from payoff.core import Outcome, Reward
from payoff.envs.base import Environment
from payoff.models.episodes import Limits, play, to_sample
from payoff.models.rollout import Generator, SamplingParams


def draw_episodes(generator: Generator, tokenizer: Any, rows: Sequence[dict[str, Any]], n: int, make_env: Callable[[int], Environment],
                  params: SamplingParams, limits: Limits, seed: int = 0, chat_template: bool = True, system: str | None = None,
                  workers: int = 8, episodes_at_once: int = 64,
                  on_progress: Callable[[int], None] | None = None) -> list[tuple[dict[str, Any], Outcome | None]]:
    """``n`` episodes per row, row-major: each as a row and, for an episode that cannot be scored,
    its ``error`` Outcome (None for the others). ``episodes_at_once`` bounds the environments open
    together (a Python environment holds a sandboxed process each)."""
    out: list[tuple[dict[str, Any], Outcome | None]] = []
    per_chunk = max(1, episodes_at_once // n)
    for start in range(0, len(rows), per_chunk):
        part = rows[start:start + per_chunk]
        repeated = [row for row in part for _ in range(n)]
        # Each chunk's environments get their own seeds: a rerun with the same seed replays them.
        records, _ = play(generator, tokenizer, repeated, make_env, params, limits, seed * 1_000_033 + start, False, chat_template,
                          system, workers)
        for k, record in enumerate(records):
            sample, failed = to_sample(record, start + k // n, 0)
            row = sample.to_dict()
            meta = dict(row["meta"])
            meta.pop("step", None)  # no training step here
            meta.pop("policy_tokens", None)
            meta.update({"sample": k % n, "tool_errors": record.tool_errors, "tokens": record.policy_tokens})
            row["meta"] = meta
            out.append((row, failed))
        if on_progress is not None:
            on_progress(len(part))
    return out


def score_episodes(drawn: Sequence[tuple[dict[str, Any], Outcome | None]], reward: Reward, workers: int = 2,
                   timeout_s: float | None = None) -> list[dict[str, Any]]:
    """Each drawn episode's row with its outcome's fields (``reward``, ``status``, ``components``,
    ``info``, as `payoff score` writes them): the playable ones scored together by `reward` through
    the engine, the others with the error they ended with. ``info`` holds the episode's turns, tool
    calls and how it ended, as a served episode's outcome does."""
    from payoff.engine import Engine

    playable = [row for row, failed in drawn if failed is None]
    scored: list[Outcome] = []
    if playable:
        with Engine(reward, workers=workers, timeout_s=timeout_s) as engine:
            scored = engine.score(playable)
    outcomes = iter(scored)
    rows = []
    for row, failed in drawn:
        outcome = failed if failed is not None else next(outcomes)
        meta = row["meta"]
        counts = {"turns": meta.get("turns"), "tool_calls": meta.get("tool_calls"), "ended": meta.get("ended")}
        outcome.info.update({k: v for k, v in counts.items() if k not in outcome.info})
        rows.append({**row, **outcome.to_dict()})
    return rows


def local_generator(policy: str, batch_size: int = 32, seed: int = 0) -> tuple[Any, Any]:
    """(generator, tokenizer) of a local policy (the embedded default or a model folder), seeded."""
    import torch

    from payoff.models.default import load_policy
    from payoff.models.rollout import HFGenerator

    torch.manual_seed(seed)
    model, tokenizer = load_policy(policy)
    model.eval()
    return HFGenerator(model, tokenizer, batch_size=batch_size), tokenizer
