"""A DPO-trained policy's implicit rewards as payoff rewards.

``implicit_reward``: r(x, y) = beta * sum_t [log pi(y_t | x, y_<t) - log pi_ref(y_t | x, y_<t)], DPO's
implicit reward model (what RewardBench scores a DPO model by), with beta and the reference (the
base model) read from the run's dpo.json. With ``level = "step_min"`` it is PRIME's implicit
process reward: the per-token terms summed within each step (steps split at blank lines) and the
weakest step's value as the score; every step's value is in ``components`` (``step_k``).
Batched like ``reward_model``: the policy and the reference load once per worker.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from payoff.core import Outcome, Sample, batched_reward

_LOADED: dict[str, Any] = {}
_LOCK = threading.Lock()


def _load(path: str) -> tuple[Any, Any, Any, dict[str, Any]]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from payoff.models.default import load_policy, quiet_loading

    quiet_loading()
    folder = Path(path) / "model" if (Path(path) / "model" / "dpo.json").is_file() else Path(path)
    if not (folder / "dpo.json").is_file():
        raise FileNotFoundError(f"{path} holds no `payoff dpo train` policy (no dpo.json in it or in {Path(path) / 'model'})")
    key = str(folder.resolve())
    with _LOCK:
        if key not in _LOADED:
            info = json.loads((folder / "dpo.json").read_text())
            reference, _ = load_policy(info["base"])
            if info.get("lora"):
                from peft import PeftModel

                base, _ = load_policy(info["base"])
                policy = PeftModel.from_pretrained(base, folder).merge_and_unload()
            else:
                policy = AutoModelForCausalLM.from_pretrained(folder)
            tokenizer = AutoTokenizer.from_pretrained(folder)
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            _LOADED[key] = (policy.eval(), reference.eval(), tokenizer, info)
        return _LOADED[key]


@batched_reward(name="implicit_reward", batch_size=8, timeout_s=300.0)
def implicit_reward(samples: list[Sample], path: str = "", level: str = "sequence", beta: float | None = None) -> list[Outcome]:
    """DPO's implicit reward beta * log(pi / pi_ref) of the completion (a `payoff dpo train` run);
    ``level="step_min"``: PRIME's implicit process reward, the weakest step's."""
    import torch

    from payoff.models.logprobs import batched_logprobs
    from payoff.models.reward_model import RenderSpec, render

    if not path:
        raise ValueError("implicit_reward needs path= (a `payoff dpo train` run folder)")
    if level not in ("sequence", "step_min"):
        raise ValueError("level must be 'sequence' or 'step_min'")
    policy, reference, tokenizer, info = _load(path)
    scale = float(beta if beta is not None else info["beta"])
    spec = RenderSpec(chat_template=bool(info.get("chat_template", True)), max_length=4096)
    prompts, answers = [], []
    for sample in samples:
        prompt_ids, answer_ids = render(tokenizer, sample.prompt, sample.completion, spec)
        prompts.append(prompt_ids or [int(tokenizer.eos_token_id)])
        answers.append(answer_ids)
    pad = int(tokenizer.pad_token_id)
    with torch.no_grad():
        pi = batched_logprobs(policy, prompts, answers, pad, micro_batch=len(samples))
        ref = batched_logprobs(reference, prompts, answers, pad, micro_batch=len(samples))
    outcomes = []
    for sample, a, b, answer in zip(samples, pi, ref, answers):
        ratio = scale * (a - b)
        components = {"logp": float(a.sum()), "logp_ref": float(b.sum()), "sequence": float(ratio.sum())}
        score = components["sequence"]
        if level == "step_min":
            bounds = _step_bounds(tokenizer, sample.completion, len(answer))
            steps = [float(ratio[start:end].sum()) for start, end in bounds]
            components.update({f"step_{k}": value for k, value in enumerate(steps)})
            score = min(steps) if steps else score
        outcomes.append(Outcome.ok(score, components))
    return outcomes


def _step_bounds(tokenizer: Any, completion: str, total: int) -> list[tuple[int, int]]:
    """Token ranges of the completion's steps (split at blank lines), from the token counts of its
    growing prefixes (a BPE merge across a boundary can move it by a token)."""
    parts = completion.split("\n\n")
    bounds, start, text = [], 0, ""
    for index, part in enumerate(parts):
        text += part + ("\n\n" if index < len(parts) - 1 else "")
        end = min(total, len(tokenizer(text, add_special_tokens=False)["input_ids"]))
        if index == len(parts) - 1:
            end = total
        if end > start:
            bounds.append((start, end))
        start = end
    return bounds
