"""One step's experience: sample a group per prompt, score it while the next generation batch
runs, and turn outcomes into a reward grid with a validity mask; and what an estimator makes of it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from payoff.core import Outcome, Sample
from payoff.models.rollout import Generator, Rollouts, SamplingParams
from payoff.rl import algorithms as alg
from payoff.rl.config import RolloutConfig, TrainConfig
from payoff.rl.scoring import RolloutScorer, is_correct

ON_ERROR = ("mask", "zero", "fail")


class RewardFailure(RuntimeError):
    """A reward ended in error or timeout under ``on_error = "fail"``."""


@dataclass
class Batch:
    rows: list[dict[str, Any]]  # one per group
    rollouts: Rollouts  # group-major: sample i belongs to group i // G
    outcomes: list[Outcome]
    rewards: Tensor  # [P, G]; 0 where not valid
    valid: Tensor  # [P, G] bool
    correct: Tensor  # [P, G] bool
    greedy_rewards: Tensor | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    episodes: list[Any] | None = None  # multi-turn: one `payoff.models.episodes.EpisodeRecord` per sample

    @property
    def group_size(self) -> int:
        return self.rewards.shape[1]

    def select_groups(self, keep: Tensor) -> Batch:
        """The sub-batch of the groups where ``keep`` ([P] bool) is True."""
        g = self.group_size
        index = [int(i) for i in torch.nonzero(keep).flatten()]
        samples = [p * g + j for p in index for j in range(g)]
        roll = self.rollouts.select(samples)
        greedy = self.greedy_rewards[keep] if self.greedy_rewards is not None else None
        episodes = [self.episodes[i] for i in samples] if self.episodes is not None else None
        return Batch([self.rows[i] for i in index], roll, [self.outcomes[i] for i in samples], self.rewards[keep],
                     self.valid[keep], self.correct[keep], greedy, dict(self.seconds), episodes)

    @staticmethod
    def concat(parts: list[Batch]) -> Batch:
        roll = Rollouts()
        for part in parts:
            roll.extend(part.rollouts)
        greedy = [p.greedy_rewards for p in parts]
        seconds: dict[str, float] = {}
        for part in parts:
            for key, value in part.seconds.items():
                seconds[key] = seconds.get(key, 0.0) + value
        episodes = [e for p in parts for e in p.episodes] if all(p.episodes is not None for p in parts) else None
        return Batch([r for p in parts for r in p.rows], roll, [o for p in parts for o in p.outcomes],
                     torch.cat([p.rewards for p in parts]), torch.cat([p.valid for p in parts]), torch.cat([p.correct for p in parts]),
                     torch.cat(greedy) if all(g is not None for g in greedy) else None, seconds, episodes)


@dataclass
class Estimate:
    """What an advantage estimator computed from a batch, for the update."""

    advantages: Tensor | list[Tensor]  # per sample [N], or per token (token-level estimators: N 1-D tensors)
    take_part: Tensor  # [N] bool: the samples in the loss
    old_logprobs: list[Tensor] | None = None  # the sampling policy's log-probs, when the estimator computed them
    values: list[Tensor] | None = None  # the critic's values (gae)
    returns: list[Tensor] | None = None  # the critic's targets (gae)
    metrics: dict[str, float] = field(default_factory=dict)


def reward_value(outcome: Outcome, on_error: str) -> float | None:
    """The number the learner sees, or None when the sample is masked out."""
    if outcome.status == "ok":
        return float(outcome.score)  # type: ignore[arg-type]
    if on_error == "fail" and outcome.status in ("error", "timeout"):
        raise RewardFailure(f"reward {outcome.status}: {outcome.info.get('error') or outcome.info}")
    return 0.0 if on_error == "zero" else None


def to_samples(rows: Sequence[dict[str, Any]], rollouts: Rollouts, offset: int, group_size: int, step: int) -> list[Sample]:
    samples = []
    for i, text in enumerate(rollouts.texts):
        group = (offset + i) // group_size
        row = rows[group]
        meta = {**(row.get("meta") or {}), "step": step, "num_tokens": len(rollouts.completion_ids[i]),
                "truncated": rollouts.truncated[i]}
        samples.append(Sample(completion=text, prompt=row["prompt"], reference=row.get("reference"), meta=meta, group=group))
    return samples


def sampling_params(rollout: RolloutConfig, max_new_tokens: int | None = None) -> SamplingParams:
    return SamplingParams(max_new_tokens or rollout.max_new_tokens, rollout.temperature, rollout.top_p, rollout.top_k, list(rollout.stop))


def collect(generator: Generator, scorer: RolloutScorer, rows: Sequence[dict[str, Any]], prompts: Sequence[str], config: TrainConfig,
            step: int, component: str | None) -> Batch:
    """Generate ``group_size`` completions per prompt in generation batches of whole groups. Each
    batch's raw outcomes are scored in a background thread while the next one generates; the
    reward's batch step then runs once over all of them, as one `payoff score` call over the
    step's samples would. ReMax's greedy completions (one per prompt) are measured against the
    reward as it stands, before this step's samples move its shapers, and never move them: they
    are a baseline, not samples of the step."""
    rollout, params = config.rollout, sampling_params(config.rollout)
    group_size = rollout.group_size
    per_batch = max(1, rollout.batch_size // group_size) * group_size
    repeated = [p for p in prompts for _ in range(group_size)]
    rollouts, samples, scored = Rollouts(), [], []
    greedy_samples: list[Sample] = []
    greedy_scored: Future | None = None
    generate_s = 0.0
    with ThreadPoolExecutor(max_workers=1) as pool:
        def score_raw(part_samples: list[Sample], part: Rollouts) -> Future:
            if scorer.overlaps_generation:
                return pool.submit(scorer.score_raw, part_samples, part)
            done: Future = Future()  # scoring reads the live policy: in this thread, between generation batches
            done.set_result(scorer.score_raw(part_samples, part))
            return done

        for start in range(0, len(repeated), per_batch):
            began = time.perf_counter()
            part = generator.generate(repeated[start:start + per_batch], params)
            generate_s += time.perf_counter() - began
            rollouts.extend(part)
            part_samples = to_samples(rows, part, start, group_size, step)
            samples += part_samples
            scored.append(score_raw(part_samples, part))
        if "greedy_rewards" in alg.estimator_context(config.algorithm.advantage):  # ReMax
            began = time.perf_counter()
            greedy = generator.generate(list(prompts), params, greedy=True)
            generate_s += time.perf_counter() - began
            greedy_samples = to_samples(rows, greedy, 0, 1, step)
            greedy_scored = score_raw(greedy_samples, greedy)
        waited = time.perf_counter()
        outcomes = [o for f in scored for o in f.result()]
        greedy_rewards = None
        if greedy_scored is not None:
            greedy_outcomes = greedy_scored.result()
            scorer.batch_step(greedy_samples, greedy_outcomes, learn=False)
            greedy_rewards = torch.tensor([reward_value(o, "zero") for o in greedy_outcomes], dtype=torch.float32)
        scorer.batch_step(samples, outcomes)
        score_wait_s = time.perf_counter() - waited
    values = [reward_value(o, config.algorithm.on_error) for o in outcomes]
    shape = (len(prompts), group_size)
    rewards = torch.tensor([v if v is not None else 0.0 for v in values], dtype=torch.float32).view(shape)
    valid = torch.tensor([v is not None for v in values]).view(shape)
    correct = torch.tensor([is_correct(o, component, config.eval.threshold) for o in outcomes]).view(shape)
    return Batch(list(rows), rollouts, outcomes, rewards, valid, correct, greedy_rewards,
                 {"generate": generate_s, "score_wait": score_wait_s})
