"""The reward-model lifecycle on the embedded policy, end to end, with the `payoff` CLI:

1. sample N completions per prompt from SmolLM2-135M-Instruct on the arithmetic task and on GSM8K
   word problems, scored by the `math` verifier (`payoff rm sample --reward math`);
2. build chosen/rejected pairs, correct vs incorrect, within each prompt (`payoff rm pairs`);
   training and held-out pairs come from disjoint prompts;
3. train an outcome RM (`payoff rm train examples/rm/rm.toml`) and report its held-out pairwise
   accuracy against a length-only baseline, and its length bias;
4. audit it (`payoff audit --config examples/rm/rubric.toml`);
5. use it as the reward for a few GRPO steps (`payoff rl train examples/rm/train_against_rm.toml`).

    python examples/rm/worked_example.py [--quick]

Writes everything under out/rm_example/ and prints report.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

OUT = Path("out/rm_example")
HERE = Path(__file__).resolve().parent


def run(*args: str) -> str:
    started = time.perf_counter()
    print("$ payoff " + " ".join(args), file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, "-m", "payoff", *args], check=True, stdout=subprocess.PIPE, text=True)
    print(f"  ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    return done.stdout


def length_baseline(pairs_path: Path) -> dict[str, float]:
    """Accuracy of "the longer answer wins" and "the shorter answer wins" (characters; equal
    lengths count half)."""
    rows = [json.loads(line) for line in pairs_path.read_text().splitlines() if line.strip()]
    longer = sum(1.0 if len(r["chosen"]) > len(r["rejected"]) else 0.5 if len(r["chosen"]) == len(r["rejected"]) else 0.0 for r in rows)
    n = max(1, len(rows))
    return {"pairs": len(rows), "longer_wins": longer / n, "shorter_wins": 1 - longer / n}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a small run (minutes) to check the pipeline")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    scale = 4 if args.quick else 1
    report: dict[str, object] = {}
    started = time.perf_counter()
    # 1. sample and score: arithmetic (level 1) and GSM8K; train and held-out prompts apart. CPU
    # generation of the 135M policy runs at ~65 tokens/s here, which sets the sizes.
    jobs = [("arith", ["--task", "arithmetic", "--level", "1", "--max-new-tokens", "24"], 96, 32),
            ("gsm8k", ["--task", "gsm8k", "--max-new-tokens", "128"], 16, 8)]
    for name, options, train_prompts, eval_prompts in jobs:
        for split, count, seed in (("train", train_prompts // scale, "1"), ("eval", eval_prompts // scale, "2")):
            target = OUT / f"{name}.{split}.scored.jsonl"
            if not target.exists():
                run("rm", "sample", *options, "--prompts", str(count), "--n", "8", "--task-seed", seed,
                    "--reward", "math", "--out", str(target))
    # 2. pairs: at most 8 per prompt, so no prompt dominates.
    for split in ("train", "eval"):
        merged = OUT / f"{split}.scored.jsonl"
        with open(merged, "w") as handle:
            for name, *_ in jobs:
                for line in (OUT / f"{name}.{split}.scored.jsonl").read_text().splitlines():
                    row = json.loads(line)
                    row["group"] = f"{name}-{row['group']}"
                    handle.write(json.dumps(row) + "\n")
        report[f"pairs_{split}"] = json.loads(run("rm", "pairs", str(merged), "--out", str(OUT / f"pairs.{split}.jsonl"),
                                                  "--max-per-prompt", "8"))
    report["length_baseline_eval"] = length_baseline(OUT / "pairs.eval.jsonl")
    # 3. train the outcome RM.
    steps = ["--set", "steps=20"] if args.quick else []
    summary = json.loads(run("rm", "train", str(HERE / "rm.toml"), *steps))
    report["rm"] = {k: summary.get(k) for k in ("accuracy_before", "accuracy_after", "length_correlation", "tie_rate_after",
                                                  "calibration_ece_after", "steps", "wall_seconds", "seconds_per_step",
                                                  "train_pairs", "eval_pairs", "truncated_train_pairs")}
    # 4. audit it on held-out tasks (prompt + reference), with the RM as the reward.
    tasks = OUT / "audit_tasks.jsonl"
    with open(tasks, "w") as handle:
        for line in (OUT / "arith.eval.scored.jsonl").read_text().splitlines()[::8][:24]:
            row = json.loads(line)
            handle.write(json.dumps({"prompt": row["prompt"], "reference": row["reference"]}) + "\n")
    subprocess.run([sys.executable, "-m", "payoff", "audit", str(tasks), "--config", str(HERE / "rubric.toml"),
                    "--report", str(OUT / "audit"), "--workers", "1"], check=False)
    audit = json.loads((OUT / "audit" / "report.json").read_text())
    report["audit"] = {"verdict": audit["verdict"], "families": {
        f["family"]: {k: f[k] for k in ("exploit_rate", "exploit_probes", "false_negative_rate", "correct_probes")} for f in audit["families"]}}
    # 5. RL against the learned reward (KL-regularised), accuracy by the verifier.
    policy = json.loads(run("rl", "train", str(HERE / "train_against_rm.toml"), *(["--set", "steps=2"] if args.quick else [])))
    report["rl_against_rm"] = {k: policy.get(k) for k in ("accuracy_before", "accuracy_after", "steps", "wall_seconds")}
    report["wall_seconds"] = round(time.perf_counter() - started)
    (OUT / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
