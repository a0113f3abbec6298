"""LLM judges as payoff rewards. Each is registered, configured with a backend
(``backend = "local"`` with an optional ``model`` folder, or ``backend = "openai"`` with
``base_url`` and ``model``), ``guard`` and ``template``, and works in a Rubric, `payoff score`,
`payoff rl train`, `payoff serve` and `payoff audit` like any reward.

Scores (always in [0, 1]) come from verdict probabilities, not from sampled text alone:
- ``judge_pointwise``: E[score] on 1..scale mapped to [0, 1], (E - 1) / (scale - 1);
- ``judge_binary``: P(Yes);
- ``judge_reference``: P(Yes) that the answer matches ``reference`` (behind the master-key guard);
- ``judge_pairwise``: the completion against an opponent (``meta["other"]``, else the
  reference), asked in both orders; the conservative rule: 1 if both orders prefer the
  completion, 0 if both prefer the opponent, else 0.5 (a tie); ``flip`` marks disagreement;
- ``judge_brpo`` (a group reward, Writing-Zero's BRPO): one member of each group, drawn with a
  seed from the group id, is the in-group reference; every other member is judged pairwise against
  it (both orders, conservative rule); the reference itself gets 0.5;
- ``judge_principle`` (RewardAnything): pointwise under a stated ``principle``;
- ``judge_checklist`` (RLCF; binary principles as in RLBFF): P(Yes) per item of ``items`` (or
  ``meta["checklist"]``), their ``weights``-weighted mean; each item in ``components``.
With the local backend, ``share_prefix`` (default: where it measured faster) computes the prompts'
shared template prefix once per call (`payoff.judges.backends.LocalBackend`), ``precision =
"bf16"`` runs its forwards under bfloat16 autocast, and the reward's ``batch_size`` is how many
prompts go through one forward.
With ``guard`` (default on) a content-free answer (`payoff.judges.guard`) scores 0 without a judge
call, and ``components["guard_rejected"]`` says so. A failed call or an unreadable verdict is an
``error`` outcome, never a number.
"""

from __future__ import annotations

import hashlib
import os
import random
from typing import Any

from payoff.core import Outcome, Sample, batched_reward, group_reward
from payoff.judges.backends import make_backend
from payoff.judges.guard import content_free
from payoff.judges.templates import load_template, parse_choice, parse_score, parse_yes_no


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" if isinstance(m, dict) else str(m) for m in value)
    return "" if value is None else str(value)


def _backend(backend: str, model: str | None, base_url: str | None, concurrency: int, call_timeout_s: float, retries: int,
             share_prefix: bool | None = None, precision: str = "fp32") -> Any:
    if backend == "openai":
        # PAYOFF_JUDGE_CACHE: the judgment cache's folder ("off": none); default under $PAYOFF_CACHE
        cache = os.environ.get("PAYOFF_JUDGE_CACHE", "default")
        return make_backend("openai", model, base_url, concurrency=concurrency, timeout_s=call_timeout_s, retries=retries,
                            cache=None if cache == "off" else cache)
    return make_backend("local", model, share_prefix=share_prefix, precision=precision)


def _ask(judge: Any, template: Any, prompts: list[str], choices: list[str], prefix: str, parse: Any) -> list[Any]:
    if hasattr(judge, "replies"):
        return judge.verdicts(prompts, choices, prefix, version=template.version, parse=parse)
    return judge.verdicts(prompts, choices, prefix)


def _usage(judge: Any) -> dict[str, Any]:
    return dict(getattr(judge, "usage", {}))


def _identity_for(default: str) -> Any:
    def identity(template: str = default, **_: Any) -> str:
        """Cache identity: the template's version and text (editing a template must not reuse
        cached outcomes)."""
        try:
            found = load_template(template)
        except (FileNotFoundError, ValueError):
            return "missing-template"
        return hashlib.sha256(f"{found.version}\0{found.text}".encode()).hexdigest()[:16]

    return identity


def _single(samples: list[Sample], template_name: str, choices: list[str], prefix: str, parse: Any, score_of: Any, guard: bool,
            backend: str, model: str | None, base_url: str | None, concurrency: int, call_timeout_s: float, retries: int,
            fields_of: Any, share_prefix: bool | None = None, precision: str = "fp32") -> list[Outcome]:
    template = load_template(template_name)
    judge = _backend(backend, model, base_url, concurrency, call_timeout_s, retries, share_prefix, precision)
    outcomes: list[Outcome | None] = [None] * len(samples)
    asked, prompts = [], []
    for i, sample in enumerate(samples):
        reason = content_free(sample.completion) if guard else None
        if reason is not None:
            outcomes[i] = Outcome.ok(0.0, {"guard_rejected": 1.0}, guard=reason, judge_called=False)
            continue
        asked.append(i)
        prompts.append(template.render(**fields_of(sample)))
    for i, verdict in zip(asked, _ask(judge, template, prompts, choices, prefix, parse) if prompts else []):
        if isinstance(verdict, Exception):
            outcomes[i] = Outcome.error(f"judge failed: {verdict}", judge=judge.identity())
            continue
        components = {f"p_{c}": verdict[c] for c in choices}
        components["verdict_mass"] = verdict.get("_mass", 1.0)
        if guard:
            components["guard_rejected"] = 0.0
        shared = {"shared_prefix_tokens": int(verdict["_shared"])} if "_shared" in verdict else {}
        outcomes[i] = Outcome.ok(score_of(verdict), components, judge=judge.identity(), template=f"{template.name}@{template.version}", **shared)
    usage = _usage(judge)
    for outcome in outcomes:
        if outcome is not None and usage:
            outcome.info.setdefault("judge_usage", usage)
    return outcomes  # type: ignore[return-value]


def _expected(scale: int) -> Any:
    return lambda verdict: (sum(int(c) * p for c, p in verdict.items() if not c.startswith("_")) - 1) / (scale - 1)


@batched_reward(name="judge_pointwise", batch_size=8, timeout_s=600.0)
def judge_pointwise(samples: list[Sample], backend: str = "local", model: str | None = None, base_url: str | None = None, guard: bool = True,
                    template: str = "pointwise", scale: int = 5, concurrency: int = 4, call_timeout_s: float = 60.0,
                    retries: int = 4, share_prefix: bool | None = None, precision: str = "fp32") -> list[Outcome]:
    """An LLM judge's 1..scale rating of the completion, as E[score] mapped to [0, 1]."""
    choices = [str(k) for k in range(1, scale + 1)]
    return _single(samples, template, choices, "Score: ", lambda t: str(parse_score(t, scale)), _expected(scale), guard, backend, model,
                   base_url, concurrency, call_timeout_s, retries, lambda s: {"prompt": _text(s.prompt), "response": s.completion, "scale": scale},
                   share_prefix, precision)


@batched_reward(name="judge_binary", batch_size=8, timeout_s=600.0)
def judge_binary(samples: list[Sample], backend: str = "local", model: str | None = None, base_url: str | None = None, guard: bool = True,
                 template: str = "binary", concurrency: int = 4, call_timeout_s: float = 60.0, retries: int = 4,
                 share_prefix: bool | None = None, precision: str = "fp32") -> list[Outcome]:
    """An LLM judge's P(Yes) that the completion satisfies the request."""
    return _single(samples, template, ["Yes", "No"], "", lambda t: "Yes" if parse_yes_no(t) else "No", lambda v: v["Yes"], guard, backend,
                   model, base_url, concurrency, call_timeout_s, retries, lambda s: {"prompt": _text(s.prompt), "response": s.completion},
                   share_prefix, precision)


@batched_reward(name="judge_reference", batch_size=8, timeout_s=600.0)
def judge_reference(samples: list[Sample], backend: str = "local", model: str | None = None, base_url: str | None = None,
                    guard: bool = True, template: str = "reference", concurrency: int = 4, call_timeout_s: float = 60.0,
                    retries: int = 4, share_prefix: bool | None = None, precision: str = "fp32") -> list[Outcome]:
    """An LLM judge's P(Yes) that the completion's answer matches the reference, behind the
    master-key guard (a fallback where a verifier abstains)."""
    return _single(samples, template, ["Yes", "No"], "", lambda t: "Yes" if parse_yes_no(t) else "No", lambda v: v["Yes"], guard, backend,
                   model, base_url, concurrency, call_timeout_s, retries,
                   lambda s: {"prompt": _text(s.prompt), "response": s.completion, "reference": _text(s.reference)}, share_prefix, precision)


@batched_reward(name="judge_principle", batch_size=8, timeout_s=600.0)
def judge_principle(samples: list[Sample], principle: str = "Be helpful, correct and concise.", backend: str = "local",
                    model: str | None = None, base_url: str | None = None, guard: bool = True, template: str = "principle", scale: int = 5,
                    concurrency: int = 4, call_timeout_s: float = 60.0, retries: int = 4, share_prefix: bool | None = None,
                    precision: str = "fp32") -> list[Outcome]:
    """RewardAnything-style: how well the completion follows a stated principle, 1..scale -> [0, 1]."""
    choices = [str(k) for k in range(1, scale + 1)]
    return _single(samples, template, choices, "Score: ", lambda t: str(parse_score(t, scale)), _expected(scale), guard, backend, model,
                   base_url, concurrency, call_timeout_s, retries,
                   lambda s: {"prompt": _text(s.prompt), "response": s.completion, "scale": scale, "principle": principle}, share_prefix, precision)


@batched_reward(name="judge_checklist", batch_size=8, timeout_s=600.0)
def judge_checklist(samples: list[Sample], items: list[str] | None = None, weights: list[float] | None = None, backend: str = "local",
                    model: str | None = None, base_url: str | None = None, guard: bool = True, template: str = "checklist",
                    concurrency: int = 4, call_timeout_s: float = 60.0, retries: int = 4, share_prefix: bool | None = None,
                    precision: str = "fp32") -> list[Outcome]:
    """RLCF / RLBFF: P(Yes) per checklist item (``items`` or ``meta["checklist"]``), weighted mean."""
    tmpl = load_template(template)
    judge = _backend(backend, model, base_url, concurrency, call_timeout_s, retries, share_prefix, precision)
    plan, prompts = [], []
    outcomes: list[Outcome | None] = [None] * len(samples)
    for i, sample in enumerate(samples):
        checklist = list(items if items is not None else sample.meta.get("checklist") or [])
        if not checklist:
            outcomes[i] = Outcome.abstain("no checklist items (params items= or meta['checklist'])")
            continue
        reason = content_free(sample.completion) if guard else None
        if reason is not None:
            outcomes[i] = Outcome.ok(0.0, {"guard_rejected": 1.0}, guard=reason, judge_called=False)
            continue
        for k, item in enumerate(checklist):
            plan.append((i, k, len(checklist)))
            prompts.append(tmpl.render(prompt=_text(sample.prompt), response=sample.completion, item=item))
    verdicts = _ask(judge, tmpl, prompts, ["Yes", "No"], "", lambda t: "Yes" if parse_yes_no(t) else "No") if prompts else []
    per_sample: dict[int, dict[int, Any]] = {}
    for (i, k, _), verdict in zip(plan, verdicts):
        per_sample.setdefault(i, {})[k] = verdict
    for i, found in per_sample.items():
        failed = [v for v in found.values() if isinstance(v, Exception)]
        if failed:
            outcomes[i] = Outcome.error(f"judge failed on {len(failed)} checklist item(s): {failed[0]}")
            continue
        count = len(found)
        w = list(weights) if weights is not None and len(weights) == count else [1.0] * count
        values = [found[k]["Yes"] for k in range(count)]
        components = {f"item_{k}": v for k, v in enumerate(values)}
        outcomes[i] = Outcome.ok(sum(a * b for a, b in zip(w, values)) / sum(w), components, judge=judge.identity())
    return outcomes  # type: ignore[return-value]


def _pairwise(judge: Any, tmpl: Any, prompt: str | list[str], first: list[str], second: list[str]) -> list[tuple[float, float] | Exception]:
    """P(candidate wins) asked as (candidate=A, opponent=B) and as (opponent=A, candidate=B);
    ``prompt`` is one for all pairs or one per pair. Both orders of every pair go to the judge in
    one call, so a batched backend judges them together."""
    texts = [prompt] * len(first) if isinstance(prompt, str) else list(prompt)
    prompts = [tmpl.render(prompt=q, response_a=a, response_b=b) for q, a, b in zip(texts, first, second)]
    prompts += [tmpl.render(prompt=q, response_a=b, response_b=a) for q, a, b in zip(texts, first, second)]
    verdicts = _ask(judge, tmpl, prompts, ["A", "B"], "", parse_choice)
    n = len(first)
    out: list[tuple[float, float] | Exception] = []
    for forward, backward in zip(verdicts[:n], verdicts[n:]):
        bad = forward if isinstance(forward, Exception) else backward if isinstance(backward, Exception) else None
        out.append(bad if bad is not None else (forward["A"], backward["B"]))
    return out


def conservative(p_first: float, p_second: float) -> float:
    """A win only if both orders agree (1), a loss if both disagree (0), else a tie (0.5)."""
    if p_first > 0.5 and p_second > 0.5:
        return 1.0
    if p_first < 0.5 and p_second < 0.5:
        return 0.0
    return 0.5


def _pair_outcome(result: Any, judge: Any) -> Outcome:
    if isinstance(result, Exception):
        return Outcome.error(f"judge failed: {result}", judge=judge.identity())
    p1, p2 = result
    flip = float((p1 > 0.5) != (p2 > 0.5))
    return Outcome.ok(conservative(p1, p2), {"p_win_first_order": p1, "p_win_second_order": p2, "flip": flip}, judge=judge.identity())


@batched_reward(name="judge_pairwise", batch_size=8, timeout_s=600.0)
def judge_pairwise(samples: list[Sample], backend: str = "local", model: str | None = None, base_url: str | None = None, guard: bool = True,
                   template: str = "pairwise", concurrency: int = 4, call_timeout_s: float = 60.0, retries: int = 4,
                   share_prefix: bool | None = None, precision: str = "fp32") -> list[Outcome]:
    """The completion against an opponent (``meta["other"]``, else the reference), judged in both
    orders; 1 / 0.5 / 0 by the conservative rule; ``flip`` marks a position-dependent verdict."""
    tmpl = load_template(template)
    judge = _backend(backend, model, base_url, concurrency, call_timeout_s, retries, share_prefix, precision)
    outcomes: list[Outcome | None] = [None] * len(samples)
    for i, sample in enumerate(samples):
        opponent = sample.meta.get("other", sample.reference)
        if opponent is None:
            outcomes[i] = Outcome.abstain("no opponent: give meta['other'] or a reference")
        elif guard and content_free(sample.completion):
            outcomes[i] = Outcome.ok(0.0, {"guard_rejected": 1.0}, guard=content_free(sample.completion), judge_called=False)
    asked = [i for i, o in enumerate(outcomes) if o is None]
    results = _pairwise(judge, tmpl, [_text(samples[i].prompt) for i in asked], [samples[i].completion for i in asked],
                        [_text(samples[i].meta.get("other", samples[i].reference)) for i in asked]) if asked else []
    for i, result in zip(asked, results):
        outcomes[i] = _pair_outcome(result, judge)
    return outcomes  # type: ignore[return-value]


@group_reward(name="judge_brpo", timeout_s=600.0)
def judge_brpo(samples: list[Sample], backend: str = "local", model: str | None = None, base_url: str | None = None, guard: bool = True,
               template: str = "pairwise", seed: int = 0, concurrency: int = 4, call_timeout_s: float = 60.0, retries: int = 4,
               share_prefix: bool | None = None, precision: str = "fp32") -> list[Outcome]:
    """Writing-Zero's BRPO: each group member against a bootstrapped in-group reference (drawn with
    a seed from the group id), both orders, the conservative rule; the reference gets 0.5."""
    tmpl = load_template(template)
    judge = _backend(backend, model, base_url, concurrency, call_timeout_s, retries, share_prefix, precision)
    if len(samples) < 2:
        return [Outcome.abstain("BRPO needs a group of at least 2")] * len(samples)
    key = repr(samples[0].group).encode()
    reference = random.Random(int(hashlib.sha256(key).hexdigest()[:8], 16) + seed).randrange(len(samples))
    outcomes: list[Outcome | None] = [None] * len(samples)
    outcomes[reference] = Outcome.ok(0.5, {"is_reference": 1.0})
    others = [i for i in range(len(samples)) if i != reference]
    for i in others:
        if guard and content_free(samples[i].completion):
            outcomes[i] = Outcome.ok(0.0, {"guard_rejected": 1.0, "is_reference": 0.0}, judge_called=False)
    asked = [i for i in others if outcomes[i] is None]
    results = _pairwise(judge, tmpl, _text(samples[0].prompt), [samples[i].completion for i in asked],
                        [samples[reference].completion] * len(asked)) if asked else []
    for i, result in zip(asked, results):
        outcome = _pair_outcome(result, judge)
        outcome.components["is_reference"] = 0.0
        outcomes[i] = outcome
    return outcomes  # type: ignore[return-value]


judge_pairwise.pairwise = True  # the audit adds its position-bias probe for pairwise judges

for _judge, _template in ((judge_pointwise, "pointwise"), (judge_binary, "binary"), (judge_reference, "reference"),
                          (judge_principle, "principle"), (judge_checklist, "checklist"), (judge_pairwise, "pairwise"),
                          (judge_brpo, "pairwise")):
    _judge.fn.payoff_identity = _identity_for(_template)
