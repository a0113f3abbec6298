"""Run in the OpenRLHF 0.11.2 venv (tests/venvs.py): score the conformance samples through
OpenRLHF's own single-turn executor and print what OpenRLHF kept as JSON.

Paths: its remote reward model client (``--reward.remote_url``, aiohttp) against a running
`payoff serve`, the token in the URL (OpenRLHF sends no headers of its own), and its reward
function file mode (``--reward.remote_url .../payoff/integrations/openrlhf.py``), where it calls
``reward_func`` from a thread per query. Every sample's ``execute`` runs at once on one event
loop, as OpenRLHF's rollout does. The generator is the one stand-in: a canned engine that
"generates" the sample's completion tokens (vLLM does not run here); everything from the
tokenized prompt to the stored reward is OpenRLHF's code.

Usage: python openrlhf_paths.py '{"samples": [...], "max_length": 128, "paths": {"remote RM client":
    "http://payoff:TOKEN@127.0.0.1:PORT/get_reward", "reward function file": ".../payoff/integrations/openrlhf.py"}}'
"""

from __future__ import annotations

import asyncio
import json
import sys
from types import SimpleNamespace

from openrlhf.utils.agent import SingleTurnAgentExecutor

from tests.rl.toy import tokenizer


class CannedEngine:
    """vLLM's ``generate`` as OpenRLHF awaits it: the completion's tokens for the prompt given."""

    def __init__(self, tok, completions: dict[str, str]) -> None:
        self.tok, self.completions = tok, completions

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        prompt = self.tok.decode(prompt_token_ids, skip_special_tokens=False)
        text = next(c for p, c in self.completions.items() if prompt.endswith(p[-20:]))
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        return SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids, text=text, finish_reason="stop", logprobs=None)])


async def run(executor: SingleTurnAgentExecutor, samples: list[dict], tok, max_length: int) -> list[dict]:
    engine = CannedEngine(tok, {s["prompt"]: s["completion"] for s in samples})

    async def one(sample: dict) -> dict:
        params = SimpleNamespace(max_tokens=64, logprobs=None)
        output = await executor.execute(sample["prompt"], sample["reference"], params, max_length, tok, engine)
        logs = {k: (v.flatten()[0].item() if hasattr(v, "flatten") else v) for k, v in (output["extra_logs"] or {}).items()}
        return {"reward": _number(output["reward"]), "scores": _number(output["scores"]), "extra_logs": _numbers(logs),
                "prompt_tokens_kept": output["action_ranges"][0][0]}

    return list(await asyncio.gather(*(one(s) for s in samples)))


def _number(value):
    # The server answers lists, the file mode tensors; OpenRLHF keeps either as it came (one query per call).
    if value is None:
        return None
    if hasattr(value, "flatten"):
        return value.flatten()[0].item()
    return value[0] if isinstance(value, list) else value


def _numbers(logs: dict) -> dict:
    return {k: _number(v) for k, v in logs.items()}


def main() -> None:
    spec = json.loads(sys.argv[1])
    tok = tokenizer()
    # Each path is what OpenRLHF's --reward.remote_url names: a URL, or a reward function file.
    result = {path: asyncio.run(run(SingleTurnAgentExecutor(target), spec["samples"], tok, spec["max_length"]))
              for path, target in spec["paths"].items()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
