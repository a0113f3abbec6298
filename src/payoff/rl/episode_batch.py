"""A training step's experience when the samples are episodes (``[env]`` in the config): play a
group of episodes per task row (`payoff.models.episodes.play`), score each finished episode as one
sample of one `payoff score` call, and report what a researcher checks about them.

Accuracy is the verdict on the episode's final answer (within the environment's K tries);
accuracy at the first attempt is the verdict on the first answer: the final one when the episode
gave only one, else that first answer scored alone by the accuracy reward.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch

from payoff.core import Outcome, Sample
from payoff.models.episodes import EpisodeRecord, Limits, env_factory, play, to_rollouts, to_sample
from payoff.models.rollout import Generator, SamplingParams
from payoff.rl import algorithms as alg
from payoff.rl.batch import Batch, reward_value, sampling_params
from payoff.rl.config import EnvConfig, TrainConfig
from payoff.rl.scoring import RolloutScorer, is_correct


def limits(env: EnvConfig) -> Limits:
    return Limits(env.max_turns, env.max_tool_calls, env.max_tokens, env.wall_s)


def play_and_score(generator: Generator, tokenizer: Any, scorer: RolloutScorer, rows: Sequence[dict[str, Any]], config: TrainConfig,
                   params: SamplingParams, seed: int, step: int, group_size: int, greedy: bool = False,
                   learn: bool = True) -> tuple[list[EpisodeRecord], list[Sample], list[Outcome], dict[str, float]]:
    """``group_size`` episodes per row, scored: a raw outcome per playable episode, an ``error``
    for the others, then the reward's batch step over all of them."""
    env = config.env
    assert env is not None
    repeated = [row for row in rows for _ in range(group_size)]
    records, seconds = play(generator, tokenizer, repeated, env_factory(env.name, dict(env.options), env.reward), params,
                            limits(env), seed, greedy, config.model.chat_template, config.model.system, env.workers, env.overlap)
    samples, outcomes = [], []
    for index, record in enumerate(records):
        sample, failed = to_sample(record, index // group_size, step)
        samples.append(sample)
        outcomes.append(failed)
    playable = [i for i, o in enumerate(outcomes) if o is None]
    if playable:
        scored = scorer.score_raw([samples[i] for i in playable])
        for i, outcome in zip(playable, scored):
            outcomes[i] = outcome
    scorer.batch_step(samples, outcomes, learn)
    return records, samples, outcomes, seconds  # type: ignore[return-value]


def collect_episodes(generator: Generator, tokenizer: Any, scorer: RolloutScorer, rows: Sequence[dict[str, Any]], config: TrainConfig,
                     step: int, component: str | None) -> Batch:
    """The step's batch of episodes: ``group_size`` per row, group-major like `collect`. Seeds of
    the environments come from the run's seed and the step, so a step redone after a resume
    replays them alike. ReMax's baselines are greedy episodes, scored without moving the reward's
    shapers."""
    rollout, group_size = config.rollout, config.rollout.group_size
    params = sampling_params(rollout)
    seed = config.seed * 1_000_033 + step
    records, _, outcomes, seconds = play_and_score(generator, tokenizer, scorer, rows, config, params, seed, step, group_size)
    greedy_rewards = None
    if "greedy_rewards" in alg.estimator_context(config.algorithm.advantage):  # ReMax
        _, _, greedy, more = play_and_score(generator, tokenizer, scorer, rows, config, params, seed, step, 1, greedy=True, learn=False)
        greedy_rewards = torch.tensor([reward_value(o, "zero") for o in greedy], dtype=torch.float32)
        for key, value in more.items():
            seconds[key] = seconds.get(key, 0.0) + value
    values = [reward_value(o, config.algorithm.on_error) for o in outcomes]
    shape = (len(rows), group_size)
    rewards = torch.tensor([v if v is not None else 0.0 for v in values], dtype=torch.float32).view(shape)
    valid = torch.tensor([v is not None for v in values]).view(shape)
    correct = torch.tensor([is_correct(o, component, config.eval.threshold) for o in outcomes]).view(shape)
    for record, right, first in zip(records, correct.flatten().tolist(), first_attempt_correct(records, outcomes, config, component)):
        record.correct, record.first_correct = right, first
    return Batch(list(rows), to_rollouts(records), outcomes, rewards, valid, correct, greedy_rewards,
                 {"generate": seconds["generate"], "env": seconds["env"], "env_hidden": seconds["env_hidden"], "score_wait": 0.0},
                 records)


def accuracy_reward_name(config: TrainConfig, component: str | None) -> str | None:
    """The reward whose verdict is "correct": ``accuracy_reward``, the reward's accuracy
    component, or the reward itself when it is one named reward."""
    if config.accuracy_reward:
        return config.accuracy_reward
    if component:
        return component
    return config.reward if isinstance(config.reward, str) else None


def first_attempt_correct(records: Sequence[EpisodeRecord], outcomes: Sequence[Outcome], config: TrainConfig,
                          component: str | None) -> list[bool | None]:
    """Per episode: was its first answer right (None: no verdict)."""
    from payoff.registry import get_reward

    name = accuracy_reward_name(config, component)
    verifier = get_reward(name) if name else None
    result: list[bool | None] = []
    for record, outcome in zip(records, outcomes):
        answers = record.answers()
        if outcome.status != "ok" or not answers:
            result.append(None)
        elif answers[0] is [m for m in record.messages if m.get("role") == "assistant"][-1]:  # the first answer is the final one
            result.append(is_correct(outcome, component, config.eval.threshold))
        elif verifier is None:
            result.append(None)
        else:
            content = answers[0].get("content")
            verdict = verifier.score_one(Sample(completion=content if isinstance(content, str) else "",
                                                reference=record.row.get("reference"), meta=dict(record.row.get("meta") or {})))
            result.append(verdict.status == "ok" and verdict.score is not None and verdict.score >= config.eval.threshold)
    return result


def episode_metrics(batch: Batch) -> dict[str, float]:
    """Per step: turns, tool calls and tool errors per episode, accuracy at the first attempt and
    within the environment's tries, reward per turn, tokens the policy and the environment wrote,
    and the seconds waiting for the environments and those their steps hid behind generation."""
    records = batch.episodes or []
    n = max(len(records), 1)
    first = [r.first_correct for r in records]
    judged = [f for f in first if f is not None]
    per_turn = [o.score / r.turns for r, o in zip(records, batch.outcomes) if o.status == "ok" and o.score is not None and r.turns]
    metrics = {
        "episode/turns": sum(r.turns for r in records) / n,
        "episode/tool_calls": sum(r.tool_calls for r in records) / n,
        "episode/tool_errors": sum(r.tool_errors for r in records) / n,
        "episode/accuracy_first": sum(judged) / len(judged) if judged else 0.0,
        "episode/accuracy_within_k": float(batch.correct.float().mean()) if records else 0.0,
        "episode/reward_per_turn": sum(per_turn) / len(per_turn) if per_turn else 0.0,
        "episode/policy_tokens": sum(r.policy_tokens for r in records) / n,
        "episode/env_tokens": sum(r.env_tokens for r in records) / n,
        "time_env": batch.seconds.get("env", 0.0),  # waiting for the environments
        "time_env_hidden": batch.seconds.get("env_hidden", 0.0),  # their steps that ran during generation (overlap)
    }
    turn_values: dict[int, list[float]] = {}
    for outcome in batch.outcomes:
        for t, value in enumerate(outcome.info.get("turn_rewards") or []):
            if isinstance(value, (int, float)):
                turn_values.setdefault(t, []).append(float(value))
    for t, values in sorted(turn_values.items()):
        metrics[f"episode/turn_reward_{t + 1}"] = sum(values) / len(values)
    for reason, count in Counter(r.ended for r in records).items():
        metrics[f"episode/ended_{reason}"] = float(count)
    return metrics


def episode_samples(batch: Batch, step: int, shown: int) -> list[dict[str, Any]]:
    """Whole episodes for samples.jsonl: the trajectory as ``messages`` and what it earned."""
    records = batch.episodes or []
    out = []
    for i in range(min(shown, len(records))):
        record, outcome = records[i], batch.outcomes[i]
        out.append({"prompt": record.row.get("prompt"), "reference": record.row.get("reference"), "group": f"{step}-{i // batch.group_size}",
                    "messages": record.messages, "completion": batch.rollouts.texts[i], "reward": outcome.score,
                    "status": outcome.status, "turns": record.turns, "tool_calls": record.tool_calls,
                    "tool_errors": record.tool_errors, "ended": record.ended, "correct": record.correct,
                    "first_correct": record.first_correct, "turn_rewards": outcome.info.get("turn_rewards"),
                    "policy_tokens": record.policy_tokens, "env_tokens": record.env_tokens,
                    **({"error": outcome.info.get("error")} if outcome.status != "ok" else {})})
    return out


def heldout_episodes(generator: Generator, tokenizer: Any, scorer: RolloutScorer, rows: Sequence[dict[str, Any]], config: TrainConfig,
                     params: SamplingParams, component: str | None) -> dict[str, Any]:
    """Greedy episodes on the held-out rows: ``accuracy`` (the final answer, within K tries),
    ``accuracy_first`` (the first answer), and the turns they took."""
    if not rows:
        return {}
    records, _, outcomes, _ = play_and_score(generator, tokenizer, scorer, rows, config, params, config.seed + 7919, -1, 1,
                                             greedy=True, learn=False)
    correct = [is_correct(o, component, config.eval.threshold) for o in outcomes]
    first = first_attempt_correct(records, outcomes, config, component)
    return {"accuracy": sum(correct) / len(rows), "accuracy_first": sum(bool(f) for f in first) / len(rows),
            "turns": sum(r.turns for r in records) / len(rows), "completions": [to_rollouts([r]).texts[0] for r in records],
            "statuses": [o.status for o in outcomes]}
