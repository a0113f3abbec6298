"""What the episode tests share: a scripted policy that writes chosen text as token ids (it
implements payoff's own Generator protocol), a generator that records what it sampled, and a
training config with an ``[env]`` table."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from payoff.models.rollout import HFGenerator, Rollouts, SamplingParams
from payoff.rl.config import TrainConfig


class ScriptedGenerator:
    """Each turn's text is ``script(context_text, turn)``; its ids are the tokenized text and the
    end-of-turn token, as a model that stops would write them."""

    def __init__(self, tokenizer: Any, script: Callable[[str, int], str]) -> None:
        self.tokenizer, self.script = tokenizer, script
        self.eos_ids = [tokenizer.eos_token_id]

    def generate_ids(self, contexts: Sequence[list[int]], params: SamplingParams, greedy: bool = False) -> Rollouts:
        out = Rollouts()
        for context in contexts:
            text = self.tokenizer.decode(context)
            turn = text.count("<|im_start|>assistant") - 1
            ids = list(self.tokenizer(self.script(text, turn), add_special_tokens=False)["input_ids"]) + self.eos_ids
            out.prompt_ids.append(list(context))
            out.completion_ids.append(ids[:params.max_new_tokens])
            out.texts.append(self.tokenizer.decode(ids, skip_special_tokens=True))
            out.truncated.append(len(ids) > params.max_new_tokens)
        return out

    def generate(self, prompts: Sequence[str], params: SamplingParams, greedy: bool = False) -> Rollouts:
        return self.generate_ids([self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts], params, greedy)

    def weights_changed(self) -> None:
        pass


class RecordingGenerator(HFGenerator):
    """The real sampler, keeping every batch of ids it returned."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.returned: list[tuple[list[list[int]], list[list[int]]]] = []

    def generate_ids(self, contexts: Sequence[list[int]], params: SamplingParams, greedy: bool = False) -> Rollouts:
        out = super().generate_ids(contexts, params, greedy)
        self.returned.append(([list(c) for c in contexts], [list(c) for c in out.completion_ids]))
        return out


def calculator_script(context: str, turn: int) -> str:
    """Turn 0 calls the calculator on the question's sum; turn 1 answers with what it returned."""
    if turn == 0:
        a, b = re.search(r"What is (\d+) \+ (\d+)", context).groups()  # type: ignore[union-attr]
        return f'<tool_call>\n{{"name": "calculator", "arguments": {{"expression": "{a} + {b}"}}}}\n</tool_call>'
    result = re.findall(r"<\|im_start\|>tool\n(.*?)<\|im_end\|>", context, re.DOTALL)[-1]
    return f"The answer is {result.strip()}"


def config(env: dict[str, Any], **changes: Any) -> TrainConfig:
    data: dict[str, Any] = {"seed": 1, "steps": 1, "reward": "math", "checkpoint_every": 0, "model": {"name": "tiny"},
                            "rollout": {"group_size": 2, "prompts_per_step": 2, "max_new_tokens": 10},
                            "engine": {"workers": 0}, "env": env,
                            "log": {"progress": False, "tensorboard": False, "plot": False, "monitor": False}}
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return TrainConfig.model_validate(data)
