"""Stands in for ``python -m verl.trainer.main_ppo`` in the verl recipe of docs/integrations.md:
takes the recipe's Hydra overrides as they are, composes verl's own ``ppo_trainer`` config with
them, loads the reward manager verl would (``load_reward_manager``) and scores the conformance
samples on verl's reward loop. Prints JSON: verl's rewards and logged extras."""

from __future__ import annotations

import json
import sys

from tests.integrations.clients.verl_paths import batch, config, reward_loop
from tests.integrations.conformance import SAMPLES
from tests.rl.toy import tokenizer

if __name__ == "__main__":
    cfg = config(sys.argv[1:])
    tok = tokenizer()
    print(json.dumps({"function": cfg.reward.custom_reward_function.name, "path": cfg.reward.custom_reward_function.path,
                      "outputs": reward_loop(cfg, tok, batch(SAMPLES, tok))}, default=repr))
