"""Peak and current RSS after every optimiser step of a `payoff dpo train` run, so growth is visible.

The run is examples/dpo/dpo.toml's (the embedded SmolLM2-135M-Instruct, LoRA r 16, max length 256,
batch 8, held-out greedy accuracy on arithmetic) with fewer steps and a smaller greedy evaluation by
default. Each variant runs in its own process (its own peak RSS):

- ``payoff``: as shipped (micro-batches of at most ``optim.micro_tokens`` padded tokens, longest
  first; freed memory handed back to the system after the reference precompute and the
  evaluations, not between steps);
- ``unbounded``: ``optim.micro_tokens = 0`` and `payoff.heap.release` a no-op: micro-batches
  of ``micro_batch`` pairs whatever their length, as before the fix.

The pairs are the worked example's (out/rm_example) when present; otherwise a procedural set with
answers of widely varying length (the shape changes from step to step are what fragment the heap).

    python benchmarks/dpo_memory.py [--steps 10] [--eval-size 20] [--eval-pairs 48] [--max-length 256] [--variants payoff,unbounded]

Prints one line per step: step, RSS now, peak RSS (MB); then the slope of the peak over the steps.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

WORDS = "so we add the two numbers carefully and then check the sum once more before we answer".split()


def varied_pairs(path: Path, n: int, seed: int) -> Path:
    """Correct vs wrong sums whose prompts and answers run from a few tokens to ~200."""
    rng = random.Random(seed)
    with open(path, "w") as handle:
        for _ in range(n):
            a, b = rng.randint(1, 99), rng.randint(1, 99)
            wrong = a + b + rng.choice([-3, -2, -1, 1, 2, 3])
            pad = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
            prompt = f"{pad(rng.randint(0, 60))}. What is {a} + {b}? Answer with only the number."
            handle.write(json.dumps({"prompt": prompt, "chosen": f"{pad(rng.randint(0, 150))} {a + b}",
                                     "rejected": f"{pad(rng.randint(0, 150))} {wrong}"}) + "\n")
    return path


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(args: argparse.Namespace) -> None:
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1)  # kill -USR1 PID: where a run that grows is, on its stderr
    from payoff import heap
    from payoff.dpo.config import load_dpo_config
    from payoff.dpo.train import train_dpo
    from payoff.runs.run import Run

    extra = []
    if args.variant == "unbounded":
        heap.release = lambda: None
        import payoff.dpo.train as dpo_train

        dpo_train.release = heap.release
        extra = ["optim.micro_tokens=0"]
    end_step = Run.end_step

    def logged(self: Run, row: dict, *rest: object, **options: object) -> None:
        end_step(self, row, *rest, **options)
        print(f"STEP {json.dumps({'step': self.step, 'rss_mb': round(current_rss_mb()), 'peak_rss_mb': round(peak_rss_mb())})}",
              flush=True)

    Run.end_step = logged
    with tempfile.TemporaryDirectory() as folder:
        overrides = [f"data.train='{args.train}'", f"data.eval='{args.eval}'", f"steps={args.steps}", f"run_dir='{folder}/run'",
                     f"eval.size={args.eval_size}", "log.progress=false", "log.tensorboard=false", "log.plot=false",
                     f"checkpoint_every={args.checkpoint_every}", f"model.max_length={args.max_length}", f"data.eval_size={args.eval_pairs}",
                     *extra]
        print(f"START {json.dumps({'rss_mb': round(current_rss_mb())})}", flush=True)
        summary = train_dpo(load_dpo_config(args.config, overrides))
    print("END " + json.dumps({"peak_rss_mb": round(peak_rss_mb()), "rss_mb": round(current_rss_mb()),
                               "seconds_per_step": summary["seconds_per_step"], "reward_accuracy_after": summary["reward_accuracy_after"]}),
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=str(Path(__file__).resolve().parent.parent / "examples" / "dpo" / "dpo.toml"))
    parser.add_argument("--train", default="out/rm_example/pairs.train.jsonl")
    parser.add_argument("--eval", default="out/rm_example/pairs.eval.jsonl")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--eval-size", type=int, default=20, help="greedy held-out prompts before and after")
    parser.add_argument("--checkpoint-every", type=int, default=5)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--eval-pairs", type=int, default=48, help="held-out pairs (reference log-probs, reward accuracy)")
    parser.add_argument("--variants", default="payoff,unbounded")
    parser.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        child(args)
        return
    work = Path(tempfile.mkdtemp(prefix="dpo-memory-"))
    if not Path(args.train).exists():
        args.train, args.eval = str(varied_pairs(work / "train.jsonl", 300, 1)), str(varied_pairs(work / "eval.jsonl", 48, 2))
    print(f"pairs {args.train}; {args.steps} steps, max length {args.max_length}, greedy eval on {args.eval_size} prompts, "
          f"config {args.config}")
    for variant in args.variants.split(","):
        command = [sys.executable, __file__, "--variant", variant, "--config", args.config, "--train", args.train, "--eval", args.eval,
                   "--steps", str(args.steps), "--eval-size", str(args.eval_size), "--checkpoint-every", str(args.checkpoint_every),
                   "--max-length", str(args.max_length), "--eval-pairs", str(args.eval_pairs)]
        print(f"\n{variant}\n{'step':>5}{'RSS MB':>9}{'peak MB':>9}", flush=True)
        rows, end = [], None
        log = work / f"{variant}.stderr"
        with open(log, "w") as errors_out, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors_out, text=True) as child_process:
            for line in child_process.stdout:  # streamed: a long run shows its growth as it goes
                if line.startswith("STEP "):
                    rows.append(json.loads(line[5:]))
                    print(f"{rows[-1]['step']:>5}{rows[-1]['rss_mb']:>9}{rows[-1]['peak_rss_mb']:>9}", flush=True)
                elif line.startswith("END "):
                    end = json.loads(line[4:])
        if end is None:
            print(f"{variant} failed:\n{log.read_text()[-3000:]}", file=sys.stderr)
            continue
        half = len(rows) // 2
        if half:  # the slope over the second half: the first steps still warm the allocator up
            slope = (rows[-1]["peak_rss_mb"] - rows[half - 1]["peak_rss_mb"]) / (len(rows) - half)
            now = (rows[-1]["rss_mb"] - rows[half - 1]["rss_mb"]) / (len(rows) - half)
            print(f"growth over steps {half}..{len(rows)}: peak {slope:+.0f} MB/step, RSS {now:+.0f} MB/step")
        print(f"end of run: peak {end['peak_rss_mb']} MB (after the greedy evaluation and save), {end['seconds_per_step']} s/step")


if __name__ == "__main__":
    main()
