"""Rewards made from a reward: PAR, noisy-verifier correction, step-reward shaping."""

from __future__ import annotations

from typing import Any

from payoff.compose.transforms import backward_correction, clip_steps, delta_steps, min_form, par
from payoff.core import Outcome, Reward, Sample, check_numbers


def par_reward(base: Reward, references_key: str = "reference_completions", name: str | None = None) -> Reward:
    """PAR (Preference As Reward): r' = mean_m sigmoid(r(x, y) - r(x, y_ref_m)), with the reference
    completions y_ref in ``meta[references_key]`` scored by the same base reward."""

    def score(sample: Sample) -> Outcome:
        references = sample.meta.get(references_key)
        if not isinstance(references, list) or not references:
            return Outcome.abstain(f"PAR needs meta[{references_key!r}]: a list of reference completions")
        own = base.score_one(sample)
        if own.score is None:
            return own
        ref_scores = []
        for text in references:
            outcome = base.score_one(Sample(completion=str(text), prompt=sample.prompt, reference=sample.reference, meta=sample.meta,
                group=sample.group))
            if outcome.score is None:
                return Outcome(None, outcome.status, {}, {"error": f"reference completion: {outcome.info}"})
            ref_scores.append(outcome.score)
        return Outcome.ok(par(own.score, ref_scores), {"raw": own.score, "reference_mean": sum(ref_scores) / len(ref_scores)})

    return Reward(score, name=name or f"par({base.name})", doc=par_reward.__doc__).with_recipe(par_reward, base, references_key, name)


def noisy_corrected(base: Reward, rho_fp: float, rho_fn: float, name: str | None = None) -> Reward:
    """Backward correction of a noisy 0/1 verifier: r^ = (r~ - rho_fp) / (1 - rho_fp - rho_fn),
    unbiased for the clean reward given the verifier's false-positive and false-negative rates."""
    backward_correction(0.0, rho_fp, rho_fn)  # validate the rates now, not per sample

    def score(sample: Sample) -> Outcome:
        outcome = base.score_one(sample)
        if outcome.score is None:
            return outcome
        return Outcome.ok(backward_correction(outcome.score, rho_fp, rho_fn), {"raw": outcome.score})

    return Reward(score, name=name or f"corrected({base.name})", doc=noisy_corrected.__doc__).with_recipe(
        noisy_corrected, base, rho_fp, rho_fn, name)


_STEP_METHODS: dict[str, Any] = {"clip": clip_steps, "delta": delta_steps, "min": min_form}


def step_shaped(base: Reward, method: str = "clip", eta: float = 0.0, name: str | None = None) -> Reward:
    """Shape a process reward's step scores (``info['step_rewards']`` of the base outcome) with
    Clip (min(r_k - eta, 0)), Delta (r_k - r_{k+1}) or PURE's min-form, and score the return
    (the sum of shaped steps; for min-form, V(s_0) = min_k r_k)."""
    if method not in _STEP_METHODS:
        raise ValueError(f"method must be one of {sorted(_STEP_METHODS)}")
    check_numbers("step_shaped", eta=eta)

    def score(sample: Sample) -> Outcome:
        outcome = base.score_one(sample)
        steps = outcome.info.get("step_rewards")
        if outcome.status != "ok":
            return outcome
        if not isinstance(steps, list) or not steps:
            return Outcome.error(f"{base.name} gave no info['step_rewards'] to shape")
        shaped = clip_steps(steps, eta) if method == "clip" else _STEP_METHODS[method](steps)
        value = shaped[0] if method == "min" else sum(shaped)
        return Outcome.ok(value, {"raw": outcome.score or 0.0}, step_rewards=shaped)

    return Reward(score, name=name or f"{method}({base.name})", doc=step_shaped.__doc__).with_recipe(step_shaped, base, method, eta, name)


def fallback(primary: Reward, secondary: Reward, on: tuple[str, ...] = ("abstain",), name: str | None = None) -> Reward:
    """The primary reward's outcome, except where its status is one of ``on`` (by default: where
    it abstains, as a verifier does on an answer it cannot parse): there, and only there, the
    secondary reward is asked (a judge behind the `math` verifier). ``components["fallback"]`` says
    which one scored; the primary's verdict stays in ``info["primary"]``. Batched when either is,
    so a model-backed secondary sees all its samples of a batch at once."""
    if primary.is_group or secondary.is_group:
        raise ValueError("fallback takes per-sample rewards (not group rewards)")

    def score(samples: list[Sample]) -> list[Outcome]:
        first = primary.score_batch(samples)
        redo = [i for i, outcome in enumerate(first) if outcome.status in on]
        second = secondary.score_batch([samples[i] for i in redo]) if redo else []
        out = []
        for i, outcome in enumerate(first):
            if i in redo:
                other = second[redo.index(i)]
                out.append(Outcome(other.score, other.status, {**other.components, "fallback": 1.0},
                                   {**other.info, "primary": {"status": outcome.status, **outcome.info}}))
            else:
                out.append(Outcome(outcome.score, outcome.status, {**outcome.components, "fallback": 0.0}, outcome.info))
        return out

    sizes = [r.batch_size for r in (primary, secondary) if getattr(r, "batch_size", None)]
    made = Reward(score, name=name or f"{primary.name}|{secondary.name}", doc=fallback.__doc__, batch_size=min(sizes) if sizes else 1)
    made.timeout_s = (primary.timeout_s or 30.0) + (secondary.timeout_s or 30.0)
    return made.with_recipe(fallback, primary, secondary, on, name)
