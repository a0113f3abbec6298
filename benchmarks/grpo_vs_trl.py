"""payoff's GRPO vs TRL's GRPOTrainer on a CPU, side by side: the same model, prompts, group
size, lengths, learning rate, loss (token mean, no KL) and reward (payoff's math verifier through
its TRL adapter). Each (framework, repeat) runs in a fresh subprocess, so peak RSS is that run's
own. Reports the median seconds per step (the first step is warm-up and excluded) and the peak
RSS, on a tiny random Llama and on SmolLM2-135M-Instruct, in float32 and (``--precisions
fp32,bf16``) under bfloat16 autocast with float32 master weights: payoff's ``precision = "bf16"``
against TRL's ``bf16=True``.

    .venv/bin/python benchmarks/grpo_vs_trl.py [--models tiny,smollm2] [--repeats 3] [--steps 4] [--precisions fp32,bf16]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPTS, GROUP, NEW_TOKENS, LR = 4, 8, 16, 1e-5


def rows(n: int) -> list[dict]:
    from payoff.tasks import arithmetic

    return arithmetic(n, seed=11, level=1)


def model_dir(kind: str, scratch: Path) -> Path:
    if kind == "smollm2":
        from payoff.models.default import policy_path

        return policy_path()
    target = scratch / "tiny-llama"
    if not (target / "config.json").exists():
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.rl.toy import save_tiny

        save_tiny(target)
    return target


def run_payoff(path: Path, steps: int, out: Path, precision: str) -> list[float]:
    from payoff.rl.config import TrainConfig
    from payoff.rl.loop import train

    times: list[float] = []
    config = TrainConfig.model_validate({
        "seed": 0, "steps": steps, "run_dir": str(out / "payoff"), "checkpoint_every": 0, "reward": "math", "precision": precision,
        "model": {"name": str(path)}, "task": {"eval_size": 0},
        "rollout": {"group_size": GROUP, "prompts_per_step": PROMPTS, "max_new_tokens": NEW_TOKENS, "batch_size": PROMPTS * GROUP},
        "algorithm": {"advantage": "grpo", "loss_aggregation": "token_mean"},
        "optim": {"lr": LR, "micro_batch": PROMPTS * GROUP}, "engine": {"workers": 2},
        "log": {"progress": False, "tensorboard": False, "plot": False, "samples_every": 0, "monitor": False}})
    train(config, train_rows=rows(400), eval_rows=[], on_step=lambda row: times.append(row["time_step"]))
    return times


def run_trl(path: Path, steps: int, out: Path, precision: str) -> list[float]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from payoff.integrations.trl import trl_reward

    times: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.began = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.began)

    data = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}], "reference": r["reference"]} for r in rows(400)])
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    config = GRPOConfig(output_dir=str(out / "trl"), use_cpu=True, bf16=precision == "bf16", learning_rate=LR, max_steps=steps,
                        per_device_train_batch_size=PROMPTS * GROUP, gradient_accumulation_steps=1, num_generations=GROUP,
                        max_completion_length=NEW_TOKENS, temperature=1.0, beta=0.0, loss_type="dapo", scale_rewards="group",
                        num_iterations=1, steps_per_generation=1, logging_steps=1, report_to="none", save_strategy="no",
                        seed=0, dataloader_num_workers=0, disable_tqdm=True)
    trainer = GRPOTrainer(model=model, reward_funcs=[trl_reward("math", workers=2)], args=config, train_dataset=data,
                          processing_class=tokenizer, callbacks=[StepClock()])
    trainer.train()
    return times


def child(framework: str, kind: str, steps: int, precision: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = model_dir(kind, Path(scratch))
        times = (run_payoff if framework == "payoff" else run_trl)(path, steps, Path(scratch), precision)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"times": times, "peak_rss_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="tiny,smollm2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--precisions", default="fp32", help="fp32, bf16 or both (fp32,bf16)")
    parser.add_argument("--child", nargs=3, metavar=("FRAMEWORK", "MODEL", "PRECISION"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.steps, args.child[2])
        return
    results: dict[tuple[str, str, str], list[dict]] = {}
    precisions = args.precisions.split(",")
    for kind in args.models.split(","):
        for repeat in range(args.repeats):
            for precision in precisions:
                for framework in ("payoff", "trl"):  # interleaved, so drift in machine speed hits both
                    done = subprocess.run([sys.executable, __file__, "--child", framework, kind, precision, "--steps", str(args.steps)],
                                          capture_output=True, text=True)
                    line = next((row for row in done.stdout.splitlines() if row.startswith("RESULT ")), None)
                    if line is None:
                        print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
                        raise SystemExit(f"{framework} on {kind} ({precision}) failed")
                    result = json.loads(line[7:])
                    results.setdefault((kind, framework, precision), []).append(result)
                    print(f"{kind} {precision} {framework} repeat {repeat}: steps {[round(t, 2) for t in result['times']]} s, "
                          f"peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
    print(f"\n{PROMPTS} prompts x {GROUP} samples, {NEW_TOKENS} new tokens, {args.steps} steps (first excluded), median of {args.repeats} runs\n")
    print("| model | precision | payoff s/step | TRL s/step | ratio (payoff/TRL) | payoff peak RSS MB | TRL peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    step: dict[tuple[str, str, str], float] = {}
    for kind in args.models.split(","):
        for precision in precisions:
            runs = {fw: results[(kind, fw, precision)] for fw in ("payoff", "trl")}
            for fw in runs:
                step[(kind, fw, precision)] = statistics.median(statistics.median(r["times"][1:]) for r in runs[fw])
            rss = {fw: statistics.median(r["peak_rss_mb"] for r in runs[fw]) for fw in runs}
            p, t = step[(kind, "payoff", precision)], step[(kind, "trl", precision)]
            print(f"| {kind} | {precision} | {p:.2f} | {t:.2f} | {p / t:.2f} | {rss['payoff']:.0f} | {rss['trl']:.0f} |")
    if len(precisions) > 1:
        for kind in args.models.split(","):
            for fw in ("payoff", "trl"):
                print(f"{kind} {fw}: fp32 s/step / bf16 s/step = {step[(kind, fw, 'fp32')] / step[(kind, fw, 'bf16')]:.2f}x")


if __name__ == "__main__":
    main()
