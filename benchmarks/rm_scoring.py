"""Scoring throughput of a reward model (samples/s), side by side in one run:

- payoff: the `reward_model` reward through the engine (batched path: samples sorted by length,
  cut into batches, the model loaded once per worker), at 1 and 2 workers;
- naive: one sample per forward pass in a loop (what a hand-written reward function does);
- TRL's way: GRPOTrainer scores with a reward model by tokenising every prompt+completion of the
  batch, right-padded to the longest, and running one forward pass over the whole batch
  (`_calculate_rewards`); reproduced here with the same model, since it lives inside the trainer.
  Also at its best sensible setting: the same in micro-batches of 32.

All on the embedded SmolLM2-135M trunk with a scalar head, on completions of mixed length
(5 to ~150 tokens, like a batch of rollouts). Each method runs in its own process (thread pools
and memory do not leak between them); medians of --repeats.

    python benchmarks/rm_scoring.py [--samples 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_samples(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    words = "so the answer we add then carry one and get total which is".split()
    samples = []
    for _ in range(n):
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        length = rng.choice([2, 5, 10, 20, 40, 80, 120])
        body = " ".join(rng.choice(words) for _ in range(length))
        samples.append({"prompt": f"What is {a} + {b}? Answer with only the number.", "completion": f"{body} {a + b}", "reference": str(a + b)})
    return samples


def build_model(folder: Path) -> Path:
    import torch

    from payoff.models.reward_model import ModelInfo, RenderSpec, RewardModel, add_lora, load_trunk, save_reward_model

    trunk, tokenizer = load_trunk("smollm2-135m-instruct")
    trunk = add_lora(trunk, {"r": 8, "alpha": 16})
    torch.manual_seed(0)
    model = RewardModel(trunk).eval()
    save_reward_model(folder / "model", model, tokenizer, ModelInfo("smollm2-135m-instruct", 1, {"r": 8, "alpha": 16}, RenderSpec(max_length=512)))
    return folder


def method(name: str, run_dir: str, samples: list[dict]) -> float:
    """Seconds to score every sample (model load excluded: a trainer loads it once per run)."""
    import torch

    if name.startswith("payoff"):
        from payoff.engine import Engine
        from payoff.registry import get_reward

        workers = int(name.split("_w")[1])
        reward = get_reward("reward_model").configure(path=run_dir, batch_size=32)
        with Engine(reward, workers=workers, timeout_s=600) as engine:
            engine.score(samples[:workers * 4])  # warm: every worker loads the model
            started = time.perf_counter()
            outcomes = engine.score(samples)
            seconds = time.perf_counter() - started
        assert all(o.status == "ok" for o in outcomes), {o.status for o in outcomes}
        return seconds
    from payoff.models.reward_model import collate, load_reward_model
    from payoff.rm.scoring import encode

    model, tokenizer, info = load_reward_model(run_dir)
    pad = int(tokenizer.pad_token_id)
    sequences, _ = encode(tokenizer, [(s["prompt"], s["completion"]) for s in samples], info.render)
    started = time.perf_counter()
    with torch.no_grad():
        if name == "naive":
            for sequence in sequences:
                model(*collate([sequence], pad))
        else:  # TRL's GRPOTrainer: the whole batch right-padded to its longest, in one pass (or micro-batches)
            step = len(sequences) if name == "trl_whole_batch" else 32
            for start in range(0, len(sequences), step):
                model(*collate(sequences[start:start + step], pad, "right"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    samples = make_samples(args.samples)
    if args.method:
        print("RESULT " + json.dumps(method(args.method, args.run_dir, samples)), flush=True)
        return
    run_dir = build_model(Path(tempfile.mkdtemp(prefix="rm-scoring-")))
    names = ("payoff_w1", "payoff_w2", "naive", "trl_whole_batch", "trl_micro_32")
    seconds: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.repeats):
        for name in names:
            done = subprocess.run([sys.executable, __file__, "--method", name, "--run-dir", str(run_dir), "--samples", str(args.samples)],
                                  capture_output=True, text=True)
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(f"{name} failed: {done.stderr[-2000:]}", file=sys.stderr)
                continue
            seconds[name].append(json.loads(line[7:]))
            print(f"{name}: {seconds[name][-1]:.2f} s", file=sys.stderr, flush=True)
    rates = {n: args.samples / statistics.median(s) for n, s in seconds.items() if s}
    naive = rates.get("naive")
    print(f"{args.samples} samples, median of {args.repeats}")
    print(f"{'method':<18}{'samples/s':>12}{'vs naive':>10}")
    for name, rate in rates.items():
        print(f"{name:<18}{rate:>12.1f}{rate / naive if naive else float('nan'):>10.2f}")
    print(json.dumps(rates))


if __name__ == "__main__":
    main()
