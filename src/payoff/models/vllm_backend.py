"""Rollouts with vLLM, behind the same interface as `HFGenerator`, for GPU machines.

The trainer's weights change every step, so after each update the current weights are loaded
into the vLLM engine (``load_weights``) before the next rollouts. Never needed by the tests; used
when ``rollout.backend`` is ``vllm`` (or ``auto`` with vLLM and a GPU present).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import Any

from payoff.models.rollout import Generator, Rollouts, SamplingParams


def vllm_available() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


class VLLMGenerator(Generator):
    def __init__(self, policy: Any, config: Any) -> None:
        # The weight sync below runs a function on the engine's model (`apply_model`). With the
        # engine's core in this process (this variable; a user's own setting wins) neither the
        # function nor the weights are sent to another process. Not run by this project: no GPU
        # machine with vLLM was available to it (docs/train.md, "On a GPU").
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM

        from payoff.models.default import policy_path

        self.policy = policy
        self.llm = LLM(model=str(policy_path(config.model.name)), gpu_memory_utilization=0.3, enable_prefix_caching=True,
                       dtype="bfloat16", seed=config.seed)
        self.synced_version = -1
        self.version = 0  # bumped after each optimiser step (`weights_changed`)

    def weights_changed(self) -> None:
        self.version += 1  # the next `generate` loads the new weights first

    def _sync(self) -> None:
        if self.synced_version == self.version:
            return
        model = self.policy.model
        if self.policy.lora:
            # Fold the adapters into the base weights for the export, then unfold them again.
            model.merge_adapter()
            try:
                state = {k.replace("base_model.model.", "").replace(".base_layer", ""): v.detach().clone()
                         for k, v in model.state_dict().items() if "lora_" not in k}
            finally:
                model.unmerge_adapter()
        else:
            state = model.state_dict()
        items = [(name, tensor.cpu()) for name, tensor in state.items()]
        if hasattr(self.llm, "apply_model"):  # vLLM >= 0.9 (the V1 engine's core in this process: see __init__)
            self.llm.apply_model(lambda model: model.load_weights(items))
        else:  # the V0 engine's in-process worker
            self.llm.llm_engine.model_executor.driver_worker.model_runner.model.load_weights(items)
        # Cached prefix KV blocks were computed with the old weights: reusing them would sample
        # from a mix of two policies.
        reset = getattr(self.llm, "reset_prefix_cache", None)
        if reset is not None:
            reset()
        self.synced_version = self.version

    def generate(self, prompts: Sequence[str], params: SamplingParams, greedy: bool = False) -> Rollouts:
        from vllm import SamplingParams as VParams

        self._sync()
        options = VParams(max_tokens=params.max_new_tokens, temperature=0.0 if greedy else params.temperature,
                          top_p=1.0 if greedy else params.top_p, top_k=-1 if greedy or not params.top_k else params.top_k,
                          stop=list(params.stop) or None, include_stop_str_in_output=True)
        outputs = self.llm.generate(list(prompts), options, use_tqdm=False)
        result = Rollouts()
        for output in outputs:
            choice = output.outputs[0]
            result.prompt_ids.append(list(output.prompt_token_ids))
            result.completion_ids.append(list(choice.token_ids))
            result.texts.append(choice.text)
            result.truncated.append(choice.finish_reason == "length")
        return result
