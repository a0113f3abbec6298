"""How many of payoff's source files one GRPO training step passes through: a 1-step run of the
tiny random Llama (tests/rl/toy.py) with one engine worker, profiled inside `Trainer.train_step`
(the trainer's thread and the scoring thread; the worker process is not counted). Prints the
count and the files. A figure for the "readable top to bottom" goal of the RL trainer.

    python benchmarks/grpo_step_files.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import payoff  # noqa: E402
from payoff.rl import trainer as trainer_module  # noqa: E402
from payoff.rl.loop import train  # noqa: E402
from tests.rl.test_trainer import ROWS, toy_config  # noqa: E402
from tests.rl.toy import tiny_model, tokenizer, vowel_share  # noqa: E402

ROOT = Path(payoff.__file__).resolve().parent


def main() -> None:
    hit: set[str] = set()

    def profile(frame, event, arg) -> None:  # noqa: ANN001 - the sys.setprofile signature
        name = frame.f_code.co_filename
        if name.startswith(str(ROOT)):
            hit.add(str(Path(name).relative_to(ROOT)))

    original = trainer_module.Trainer.train_step

    def traced(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        threading.setprofile(profile)
        sys.setprofile(profile)
        try:
            return original(self, *args, **kwargs)
        finally:
            sys.setprofile(None)
            threading.setprofile(None)

    trainer_module.Trainer.train_step = traced
    with tempfile.TemporaryDirectory() as folder:
        train(toy_config(Path(folder) / "run", steps=1, engine={"workers": 1}), model=tiny_model(), tokenizer=tokenizer(),
              reward=vowel_share, train_rows=ROWS, eval_rows=[])
    files = sorted(hit)
    print(json.dumps({"files": len(files), "rl_files": sum(f.startswith("rl/") for f in files), "list": files}, indent=1))


if __name__ == "__main__":
    main()
