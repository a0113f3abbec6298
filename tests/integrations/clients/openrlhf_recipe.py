"""Stands in for ``python -m openrlhf.cli.train_ppo_ray`` in the OpenRLHF recipes of
docs/integrations.md: parses the recipe's flags with OpenRLHF's own command-line code (the
``__main__`` block of ``openrlhf/cli/train_ppo_ray.py``, run as it is with ``train`` replaced by a
probe), then scores the conformance samples through the single-turn executor OpenRLHF builds from
``args.reward.remote_url``. Prints JSON: the parsed remote_url and what OpenRLHF kept per sample."""

from __future__ import annotations

import ast
import asyncio
import json
import sys
import time
import urllib.request
from pathlib import Path

import openrlhf
from openrlhf.utils.agent import SingleTurnAgentExecutor

from tests.integrations.clients.openrlhf_paths import run
from tests.integrations.conformance import SAMPLES
from tests.rl.toy import tokenizer


def parsed_args(argv: list[str]):
    source = Path(openrlhf.__file__).parent.joinpath("cli", "train_ppo_ray.py").read_text()
    main = next(node for node in ast.parse(source).body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test))
    captured = []
    namespace = {"__name__": "probe", "train": captured.append}
    exec("import argparse, os\nfrom datetime import datetime", namespace)
    sys.argv = ["train_ppo_ray", *argv]
    exec(compile(ast.Module(body=main.body, type_ignores=[]), "train_ppo_ray.py:__main__", "exec"), namespace)
    return captured[0]


def wait_for(url: str) -> None:
    if not url.startswith("http"):
        return
    health = url.split("@", 1)[-1].rsplit("/", 1)[0]
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://{health}/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.1)


if __name__ == "__main__":
    args = parsed_args(sys.argv[1:])
    wait_for(args.reward.remote_url[0])
    outputs = asyncio.run(run(SingleTurnAgentExecutor(args.reward.remote_url), SAMPLES, tokenizer(), 4096))
    print(json.dumps({"remote_url": args.reward.remote_url, "outputs": outputs}))
