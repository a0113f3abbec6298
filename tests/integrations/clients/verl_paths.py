"""Run in the verl 0.9.1 venv (tests/venvs.py): score the conformance samples through verl's own
code, from verl's own config, and print what verl saw as JSON.

Paths: verl's reward loop (``verl.experimental.reward_loop``'s naive manager, every sample's
``run_single`` gathered on one event loop) with payoff's async function and with its synchronous
one (which verl runs in a thread pool), and the legacy ``verl.workers.reward_manager`` naive
manager over the whole batch. The function is found by verl's ``load_reward_manager`` /
``get_custom_reward_fn`` from the composed ``ppo_trainer`` config; the top-level key of older
releases is tried too, to show that verl 0.9.1 ignores it.

Usage: python verl_paths.py '{"samples": [...], "rewards": ["math", ...], "adapter": ".../verl.py"}'
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import numpy as np
import torch
import verl
from hydra import compose, initialize_config_dir

from tests.rl.toy import tokenizer


def config(overrides: list[str]):
    with initialize_config_dir(config_dir=os.path.join(os.path.dirname(verl.__file__), "trainer", "config"), version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


def ours(adapter: str, name: str, reward: str) -> list[str]:
    # The keys verl 0.9.1 reads (verl/trainer/ppo/reward.py: config.reward.custom_reward_function);
    # reward_kwargs is not in verl's schema, so Hydra needs the '+' to add it.
    return [f"reward.custom_reward_function.path={adapter}", f"reward.custom_reward_function.name={name}",
            f"+reward.custom_reward_function.reward_kwargs.reward={reward}", "+reward.custom_reward_function.reward_kwargs.workers=1"]


def batch(samples: list[dict], tok) -> verl.DataProto:
    """verl's rollout layout: left-padded prompts, right-padded responses, one attention mask."""
    prompts = [tok(s["prompt"], add_special_tokens=False)["input_ids"] for s in samples]
    responses = [tok(s["completion"], add_special_tokens=False)["input_ids"] for s in samples]
    width_p, width_r = max(map(len, prompts)), max(map(len, responses))
    pad = tok.pad_token_id
    prompt_ids = torch.tensor([[pad] * (width_p - len(p)) + p for p in prompts])
    response_ids = torch.tensor([r + [pad] * (width_r - len(r)) for r in responses])
    mask = torch.tensor([[0] * (width_p - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (width_r - len(r))
                         for p, r in zip(prompts, responses)])
    return verl.DataProto.from_dict(
        tensors={"prompts": prompt_ids, "responses": response_ids, "attention_mask": mask},
        non_tensors={"data_source": np.array(["payoff_conformance"] * len(samples), dtype=object),
                     "reward_model": np.array([{"ground_truth": s["reference"]} for s in samples], dtype=object),
                     "extra_info": np.array([{"index": i} for i in range(len(samples))], dtype=object)})


def reward_loop(cfg, tok, data) -> list[dict]:
    from verl.trainer.ppo.reward import load_reward_manager

    manager = load_reward_manager(cfg, tok)

    async def everything():
        return await asyncio.gather(*(manager.run_single(data[i:i + 1]) for i in range(len(data))))

    outputs = manager.loop.run_until_complete(everything())
    return [{"score": out["reward_score"], "extra": out["reward_extra_info"]} for out in outputs]


def legacy_manager(cfg, tok, data) -> list[dict]:
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager import NaiveRewardManager

    manager = NaiveRewardManager(tok, num_examine=0, compute_score=get_custom_reward_fn(cfg))
    result = manager(data, return_dict=True)
    lengths = data.batch["attention_mask"][:, data.batch["prompts"].shape[-1]:].sum(-1)
    extra = result["reward_extra_info"]
    return [{"score": float(result["reward_tensor"][i, lengths[i] - 1]), "extra": {k: v[i] for k, v in extra.items()}}
            for i in range(len(data))]


def main() -> None:
    spec = json.loads(sys.argv[1])
    tok = tokenizer()
    data = batch(spec["samples"], tok)
    # What verl decodes as the response must be the completion itself, or the comparison is moot.
    decoded = [tok.decode(r[r != tok.pad_token_id], skip_special_tokens=True) for r in data.batch["responses"]]
    assert decoded == [s["completion"] for s in spec["samples"]], decoded
    from verl.trainer.ppo.reward import get_custom_reward_fn

    legacy = config([f"custom_reward_function.path={spec['adapter']}", "custom_reward_function.name=compute_score"])
    result = {"verl": verl.__version__, "legacy_key_loaded": get_custom_reward_fn(legacy) is not None, "rewards": {}}
    for reward in spec["rewards"]:
        result["rewards"][reward] = {
            "reward loop, async": reward_loop(config(ours(spec["adapter"], "compute_score_async", reward)), tok, data),
            "reward loop, sync in threads": reward_loop(config(ours(spec["adapter"], "compute_score", reward)), tok, data),
            "legacy manager": legacy_manager(config(ours(spec["adapter"], "compute_score", reward)), tok, data),
        }
    print(json.dumps(result, default=repr))


if __name__ == "__main__":
    main()
