"""One step's experience: sample a group per prompt, score it through the engine while the next
generation batch runs, and turn outcomes into a reward grid with a validity mask."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from payoff.core import Outcome, Sample
from payoff.models.rollout import Rollouts, SamplingParams
from payoff.rl.evaluate import is_correct

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

    @property
    def group_size(self) -> int:
        return self.rewards.shape[1]

    def select_groups(self, keep: Tensor) -> Batch:
        """The sub-batch of the groups where ``keep`` ([P] bool) is True."""
        g = self.group_size
        index = [int(i) for i in torch.nonzero(keep).flatten()]
        samples = [p * g + j for p in index for j in range(g)]
        roll = Rollouts([self.rollouts.prompt_ids[i] for i in samples], [self.rollouts.completion_ids[i] for i in samples],
                        [self.rollouts.texts[i] for i in samples], [self.rollouts.truncated[i] for i in samples])
        greedy = self.greedy_rewards[keep] if self.greedy_rewards is not None else None
        return Batch([self.rows[i] for i in index], roll, [self.outcomes[i] for i in samples], self.rewards[keep],
                     self.valid[keep], self.correct[keep], greedy, dict(self.seconds))

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
        return Batch([r for p in parts for r in p.rows], roll, [o for p in parts for o in p.outcomes],
                     torch.cat([p.rewards for p in parts]), torch.cat([p.valid for p in parts]), torch.cat([p.correct for p in parts]),
                     torch.cat(greedy) if all(g is not None for g in greedy) else None, seconds)


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


def collect(generator: Any, engine: Any, rows: Sequence[dict[str, Any]], prompts: Sequence[str], params: SamplingParams,
            group_size: int, step: int, on_error: str, accuracy_component: str | None, threshold: float,
            batch_size: int, greedy_baseline: bool = False) -> Batch:
    """Generate ``group_size`` completions per prompt in generation batches of whole groups; each
    batch is scored in a background thread while the next one generates."""
    per_batch = max(1, batch_size // group_size) * group_size
    repeated = [p for p in prompts for _ in range(group_size)]
    rollouts, futures = Rollouts(), []
    generate_s = 0.0
    with ThreadPoolExecutor(max_workers=1) as scorer:
        for start in range(0, len(repeated), per_batch):
            began = time.perf_counter()
            part = generator.generate(repeated[start:start + per_batch], params)
            generate_s += time.perf_counter() - began
            rollouts.extend(part)
            samples = to_samples(rows, part, start, group_size, step)
            if hasattr(engine, "score_rollouts"):  # a reward on the live policy: in this thread, on the sampled ids
                done: Future = Future()
                done.set_result(engine.score_rollouts(samples, part))
                futures.append(done)
            else:
                futures.append(scorer.submit(engine.score, samples))
        greedy_rewards = None
        if greedy_baseline:  # ReMax: the reward of each prompt's greedy completion is its baseline
            began = time.perf_counter()
            greedy = generator.generate(list(prompts), params, greedy=True)
            generate_s += time.perf_counter() - began
            greedy_future: Future = scorer.submit(engine.score, to_samples(rows, greedy, 0, 1, step))
        waited = time.perf_counter()
        outcomes = [o for f in futures for o in f.result()]
        if greedy_baseline:
            greedy_rewards = torch.tensor([reward_value(o, "zero") for o in greedy_future.result()], dtype=torch.float32)
        score_wait_s = time.perf_counter() - waited
    values = [reward_value(o, on_error) for o in outcomes]
    shape = (len(prompts), group_size)
    rewards = torch.tensor([v if v is not None else 0.0 for v in values], dtype=torch.float32).view(shape)
    valid = torch.tensor([v is not None for v in values]).view(shape)
    correct = torch.tensor([is_correct(o, accuracy_component, threshold) for o in outcomes]).view(shape)
    return Batch(list(rows), rollouts, outcomes, rewards, valid, correct, greedy_rewards,
                 {"generate": generate_s, "score_wait": score_wait_s})
