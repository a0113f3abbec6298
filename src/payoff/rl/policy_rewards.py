"""Rewards read from the policy's own distribution, for tasks without a verifier.

- ``self_certainty`` (Kang et al. 2025; reward-free RL as in Intuitor): the token mean of
  KL(U || p_t) over the completion, with p_t the policy's next-token distribution over its V
  tokens: KL(U || p) = -log V - (1/V) sum_j log p_j. Higher is more confident.
- ``rlpr`` (Yu et al. 2025): the policy's reasoning z is kept, its answer replaced by the
  reference y*, and the reward is the mean per-token probability of y* after z:
  r = (1/|y*|) sum_i pi(y*_i | x, z, y*_<i). Debiased against the probability of y* with no
  reasoning, r0 (the prompt, the answer marker, y*): r^ = clip(r - r0, 0, 1). The paper's
  std filter is `[algorithm] std_filter = true` in `payoff rl train` (groups whose reward std is
  below an EMA threshold are dropped).

Both are registered rewards. A reward that needs the policy declares it with a
``policy_scorer`` attribute: ``fn(model, tokenizer, prompt_ids, completion_ids, samples, **params)
-> list[Outcome]``. `payoff rl train` calls it in-process with the live policy and the sampled ids
(`PolicyScoring`); everywhere else (`payoff score`, `payoff eval`, the server) the reward loads
``model`` (the embedded SmolLM2 by default) and tokenizes the text itself.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

from payoff.core import Outcome, Sample, batched_reward
from payoff.engine.batch_step import run_batch_step
from payoff.models.logprobs import pack, token_logprobs
from payoff.models.rollout import Rollouts
from payoff.rl.scoring import RolloutScorer, join_accuracy

if TYPE_CHECKING:
    from payoff.engine.pool import Engine

ANSWER_MARKER = r"\\boxed\{|<answer>|(?i:the (?:final )?answer is:?)"
_LOADED: dict[str, Any] = {}
_LOCK = threading.Lock()


# -- the formulas, over token ids -----------------------------------------------------------------
@torch.no_grad()
def self_certainty_scores(model: Any, tokenizer: Any, prompt_ids: Sequence[list[int]], completion_ids: Sequence[list[int]],
                          samples: Sequence[Sample], micro_batch: int = 8, **_: Any) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for start in range(0, len(prompt_ids), micro_batch):
        chunk_p, chunk_c = list(prompt_ids[start:start + micro_batch]), list(completion_ids[start:start + micro_batch])
        batch = pack(chunk_p, chunk_c, int(tokenizer.pad_token_id))
        width = batch.completion_ids.shape[1]
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                    logits_to_keep=width + 1, use_cache=False)
        logits = out.logits[:, :-1, :].float()
        # KL(U || p) = -log V - mean_j log p_j, and mean_j log p_j = mean_j logits_j - logsumexp(logits).
        per_token = -math.log(logits.shape[-1]) - logits.mean(-1) + torch.logsumexp(logits, dim=-1)
        for row, ids in enumerate(chunk_c):
            if not ids:
                outcomes.append(Outcome.abstain("empty completion: no token to be certain about"))
                continue
            value = float(per_token[row, :len(ids)].mean())
            outcomes.append(Outcome.ok(value, {"self_certainty": value}, tokens=len(ids)))
    return outcomes


def _answer_prefix(completion: str, marker: str, fallback: str) -> tuple[str, str]:
    """(the reasoning z up to and including the last answer marker, the marker alone)."""
    found = list(re.finditer(marker, completion))
    if found:
        last = found[-1]
        return completion[: last.end()], last.group(0)
    stem = completion.rstrip()
    return (stem + "\n" if stem else "") + fallback, fallback


def _reference_probability(model: Any, tokenizer: Any, head: list[int], text: str, answer: str) -> tuple[float, int]:
    """Mean per-token probability of ``answer`` right after ``head`` (ids) + ``text``."""
    joined = tokenizer(text + answer, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = joined["input_ids"], joined["offset_mapping"]
    # The answer's tokens are those that end past the reasoning (tokenized together, so the
    # answer gets the tokens it would get in running text).
    first = next((k for k, (_, end) in enumerate(offsets) if end > len(text)), len(ids))
    context, target = head + ids[:first], ids[first:]
    if not target:
        return 0.0, 0
    logp, _ = token_logprobs(model, pack([context], [target], int(tokenizer.pad_token_id)))
    return float(logp[0, :len(target)].exp().mean()), len(target)


@torch.no_grad()
def rlpr_scores(model: Any, tokenizer: Any, prompt_ids: Sequence[list[int]], completion_ids: Sequence[list[int]],
                samples: Sequence[Sample], answer_marker: str = ANSWER_MARKER, answer_prefix: str = "The answer is ",
                debias: bool = True, **_: Any) -> list[Outcome]:
    outcomes: list[Outcome] = []
    baseline: dict[tuple[int, str, str], float] = {}  # r0 per (prompt, marker, reference): shared by a group
    for head, sample in zip(prompt_ids, samples):
        if sample.reference is None or not str(sample.reference).strip():
            outcomes.append(Outcome.abstain("rlpr needs a reference answer"))
            continue
        reference = str(sample.reference).strip()
        reasoning, marker = _answer_prefix(sample.completion, answer_marker, answer_prefix)
        joiner = "" if reasoning.endswith((" ", "{", ">", "\n")) else " "
        # The joining space belongs to the context: only the reference's own tokens are scored.
        probability, tokens = _reference_probability(model, tokenizer, list(head), reasoning + joiner, reference)
        components = {"probability": probability}
        value = probability
        if debias:
            key = (hash(tuple(head)), marker, reference)
            if key not in baseline:
                stem = marker if marker.endswith((" ", "{", ">")) else marker + " "
                baseline[key] = _reference_probability(model, tokenizer, list(head), stem, reference)[0]
            components["no_reasoning"] = baseline[key]
            value = min(1.0, max(0.0, probability - baseline[key]))
        outcomes.append(Outcome.ok(value, components, reference_tokens=tokens))
    return outcomes


# -- as registered rewards (the engine path loads the model itself) -------------------------------
def _policy(model: str) -> tuple[Any, Any]:
    from payoff.models.default import load_policy

    with _LOCK:
        if model not in _LOADED:
            lm, tokenizer = load_policy(model or "smollm2-135m-instruct")
            lm.eval()
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
            _LOADED[model] = (lm, tokenizer)
        return _LOADED[model]


def tokenize_samples(tokenizer: Any, samples: Sequence[Sample], chat_template: bool = True,
                     system: str | None = None) -> tuple[list[list[int]], list[list[int]]]:
    """(prompt ids, completion ids) as `payoff rl train` renders and samples them."""
    from payoff.models.rollout import render_prompt

    prompts = [list(tokenizer(render_prompt(tokenizer, s.prompt, chat_template, system), add_special_tokens=False)["input_ids"])
               for s in samples]
    completions = [list(tokenizer(s.completion, add_special_tokens=False)["input_ids"]) if s.completion else [] for s in samples]
    return prompts, completions


@batched_reward(name="self_certainty", batch_size=8, timeout_s=600.0)
def self_certainty(samples: list[Sample], model: str = "", chat_template: bool = True) -> list[Outcome]:
    """Self-certainty: the policy's token-mean KL(U || p) over the completion (reward-free RL);
    in `payoff rl train` from the live policy, elsewhere from ``model`` (the embedded one by
    default)."""
    lm, tokenizer = _policy(model)
    prompts, completions = tokenize_samples(tokenizer, samples, chat_template)
    return self_certainty_scores(lm, tokenizer, prompts, completions, samples)


@batched_reward(name="rlpr", batch_size=8, timeout_s=600.0)
def rlpr(samples: list[Sample], model: str = "", chat_template: bool = True, answer_marker: str = ANSWER_MARKER,
         answer_prefix: str = "The answer is ", debias: bool = True) -> list[Outcome]:
    """RLPR: the mean probability the policy gives the reference answer after its own reasoning,
    minus the probability with no reasoning (clipped to [0, 1])."""
    lm, tokenizer = _policy(model)
    prompts, completions = tokenize_samples(tokenizer, samples, chat_template)
    return rlpr_scores(lm, tokenizer, prompts, completions, samples, answer_marker, answer_prefix, debias)


@runtime_checkable
class PolicyReward(Protocol):
    """A reward that reads the policy: `payoff rl train` scores it with `PolicyScoring`."""

    policy_scorer: Callable[..., list[Outcome]]  # fn(model, tokenizer, prompt_ids, completion_ids, samples, **params)


self_certainty.policy_scorer = self_certainty_scores
rlpr.policy_scorer = rlpr_scores


class PolicyScoring(RolloutScorer):
    """The scorer of `payoff rl train` for a reward with a ``policy_scorer``: it runs in this process
    on the live policy and the sampled ids (text is tokenized only where no rollouts are given).
    A reward that raises is an ``error`` outcome for its samples (a failing batch is retried one
    sample at a time, so one bad sample does not take the others with it). ``accuracy_engine``
    scores ``accuracy_name`` (a verifier, say ``math``) through the real engine; its raw verdict
    joins the components, so held-out and training accuracy mean what they mean for any other
    reward."""

    overlaps_generation = False  # the next generation batch uses the same live policy

    def __init__(self, reward: Any, policy: Any, chat_template: bool = True, system: str | None = None,
                 accuracy_engine: Engine | None = None, accuracy_name: str | None = None) -> None:
        self.reward, self.policy, self.chat_template, self.system = reward, policy, chat_template, system
        self.accuracy_engine, self.accuracy_name = accuracy_engine, accuracy_name
        self.params = {k: v for k, v in reward.params.items() if k not in ("model", "chat_template")}

    def score_raw(self, samples: Sequence[Sample], rollouts: Rollouts | None = None) -> list[Outcome]:
        if rollouts is None:
            prompts, completions = tokenize_samples(self.policy.tokenizer, samples, self.chat_template, self.system)
        else:
            prompts, completions = rollouts.prompt_ids, rollouts.completion_ids
        outcomes = self._run(prompts, completions, list(samples))
        if self.accuracy_engine is not None and self.accuracy_name:
            join_accuracy(outcomes, self.accuracy_engine.score(list(samples), batch_step=False), self.accuracy_name)
        return outcomes

    def batch_step(self, samples: Sequence[Sample], outcomes: list[Outcome], learn: bool = True) -> None:
        run_batch_step(self.reward, list(samples), outcomes, learn)  # type: ignore[arg-type]

    def _call(self, prompts: Sequence[list[int]], completions: Sequence[list[int]], samples: list[Sample]) -> list[Outcome]:
        model = self.policy.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return list(self.reward.policy_scorer(model, self.policy.tokenizer, prompts, completions, samples, **self.params))
        finally:
            model.train(was_training)

    def _run(self, prompts: Sequence[list[int]], completions: Sequence[list[int]], samples: list[Sample]) -> list[Outcome]:
        try:
            outcomes = self._call(prompts, completions, samples)
        except Exception:
            outcomes = []
            for p, c, s in zip(prompts, completions, samples):
                try:
                    outcomes.extend(self._call([p], [c], [s]))
                except Exception as error:  # noqa: BLE001 - any failure is this sample's typed error
                    outcomes.append(Outcome.error(f"{self.reward.name}: {type(error).__name__}: {error}"))
        return outcomes
