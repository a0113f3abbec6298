"""payoff's reward-model trainer against TRL's RewardTrainer, side by side, on one CPU machine.

Same model (the embedded SmolLM2-135M-Instruct, full fine-tuning), same pairs (conversational:
the prompt as a user message, each answer as the assistant's), batch size, max length, learning
rate, schedule (linear decay, no warmup) and steps. TRL runs at its defaults (its RewardConfig
turns gradient checkpointing and bf16 on) and at its best sensible CPU setting (both off:
``trl_best``; ``trl_bf16`` is bf16 without checkpointing, against ``payoff_bf16``, payoff's
``precision = "bf16"``, for a CPU whose bfloat16 products beat its float32 ones). ``trl_bf16_eager``
is ``trl_bf16`` with TRL's model loaded with plain attention (``attn_implementation="eager"``),
which on short pairs can beat PyTorch's CPU flash attention; ``trl_bf16_accum4`` (and ``_eager``)
run a quarter of the batch per forward with four accumulated, for a lower peak (``payoff_bf16_4096``:
payoff at its former bound of 4096 tokens per forward;
``payoff_bf16_512`` at half the present bound; ``payoff_bf16_sdpa``: ``model.attention = "default"``,
transformers' attention, where payoff's default is its CPU attention, plain where a layer's score matrix is
small; ``payoff_bf16_pad1``: widths not rounded up, ``optim.pad_to_multiple_of = 1``). TRL 1.16's
RewardTrainer has no padding-free mode; Trainer's ``train_sampling_strategy="group_by_length"``
needs an ``input_ids`` column that its pair rows do not have; both tools tokenise before the
loop, so data-loader workers have nothing to take off the hot path (0 workers, as on 2 cores any worker competes with the
model). Every run is its own process, so its peak RSS is its own. Reports held-out pairwise accuracy
(each tool's own metric: payoff's ties-apart accuracy, TRL's eval accuracy), s/step of the training
loop, and peak RSS; medians of --repeats runs.

    python benchmarks/rm_vs_trl.py [--train PAIRS] [--eval PAIRS] [--steps 20 | --epoch] [--repeats 3]

A few steps draw a few batches, and each tool draws its own: where pair lengths vary (the worked
example's GSM8K pairs are three times as long as its arithmetic ones), which tool drew the long
ones moves its s/step and its peak more than the tools differ. ``--epoch`` trains both tools on
every training pair once (the file cut to a whole number of batches, steps = pairs / batch), so
each does the same work, in its own order.

The default pairs are the worked example's verifier-built ones (examples/rm/worked_example.py);
without them, a procedural set is built (correct vs wrong sums).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_runs import attention_of, medians, payoff_step_times, report_result, route_by_hand, run_child, steady, step_clock, tool_env  # noqa: E402


def procedural_pairs(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    with open(path, "w") as handle:
        for _ in range(n):
            a, b = rng.randint(1, 20), rng.randint(1, 20)
            wrong = a + b + rng.choice([-3, -2, -1, 1, 2, 3])
            handle.write(json.dumps({"prompt": f"What is {a} + {b}? Answer with only the number.",
                                     "chosen": f"{a + b}", "rejected": rng.choice([f"{wrong}", f"I think it is {wrong}."])}) + "\n")
    return path


def conversational(path: Path, out: Path) -> Path:
    with open(out, "w") as handle:
        for line in path.read_text().splitlines():
            row = json.loads(line)
            prompt = row["prompt"] if isinstance(row["prompt"], list) else [{"role": "user", "content": row["prompt"]}]
            as_messages = lambda x: x if isinstance(x, list) else [{"role": "assistant", "content": x}]  # noqa: E731
            handle.write(json.dumps({"prompt": prompt, "chosen": as_messages(row["chosen"]), "rejected": as_messages(row["rejected"])}) + "\n")
    return out


def run_payoff(args: argparse.Namespace, folder: Path, tool: str) -> dict:
    from payoff.rm.config import load_rm_config
    from payoff.rm.train import train_reward_model

    overrides = [f"data.train='{args.train}'", f"data.eval='{args.eval}'", f"steps={args.steps}", f"run_dir='{folder / 'payoff'}'",
                 "checkpoint_every=0", f"optim.lr={args.lr}", f"optim.batch_size={args.batch}", f"optim.micro_batch={args.batch}",
                 f"model.max_length={args.max_length}", "log.progress=false", "log.tensorboard=false", "log.plot=false",
                 f"eval_batch_size={args.batch}", f"precision='{PAYOFF_SETTINGS[tool]}'"]
    overrides += PAYOFF_OVERRIDES.get(tool, [])
    summary = train_reward_model(load_rm_config(None, overrides))
    return {"accuracy": summary["accuracy_after"], "s_per_step": summary["seconds_per_step"],
            "s_median_step": steady(payoff_step_times(folder / "payoff"))}


PAYOFF_SETTINGS = {"payoff": "fp32", "payoff_mkl": "fp32", "payoff_bf16": "bf16",  # the tool's `precision`
                   "payoff_bf16_4096": "bf16", "payoff_bf16_512": "bf16", "payoff_bf16_sdpa": "bf16",
                   "payoff_bf16_pad1": "bf16"}
# a setting's config beyond its precision: the bound per forward before 2026-12-05 (now 1024), half of it,
# transformers' attention (sdpa; the default before 2026-12-05, now "plain"), widths not rounded up (now to 16)
PAYOFF_OVERRIDES = {"payoff_bf16_4096": ["optim.micro_tokens=4096"], "payoff_bf16_512": ["optim.micro_tokens=512"],
                    "payoff_bf16_sdpa": ["model.attention='default'"], "payoff_bf16_pad1": ["optim.pad_to_multiple_of=1"]}
# TRL's settings beside its defaults: "best" is the fastest sensible CPU setting measured
TRL_SETTINGS = {"trl_defaults": {}, "trl_best": {"gradient_checkpointing": False, "bf16": False},
                "trl_onednn": {"gradient_checkpointing": False, "bf16": False},
                "trl_bf16": {"gradient_checkpointing": False, "bf16": True},
                "trl_bf16_eager": {"gradient_checkpointing": False, "bf16": True},
                # a quarter of the batch per forward, four accumulated: a lower peak, as payoff's token bound gives
                "trl_bf16_accum4": {"gradient_checkpointing": False, "bf16": True},
                "trl_bf16_accum4_eager": {"gradient_checkpointing": False, "bf16": True}}


def run_trl(args: argparse.Namespace, folder: Path, tool: str) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from payoff.models.default import policy_path

    path = policy_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32, **attention_of(tool))
    model.config.pad_token_id = tokenizer.pad_token_id
    load = lambda p: Dataset.from_list([json.loads(line) for line in Path(p).read_text().splitlines()])  # noqa: E731
    options = dict(output_dir=str(folder / "trl"), max_steps=args.steps, per_device_train_batch_size=args.batch,
                   per_device_eval_batch_size=args.batch, learning_rate=args.lr, max_length=args.max_length,
                   lr_scheduler_type="linear", warmup_steps=0, report_to="none", save_strategy="no", eval_strategy="no",
                   logging_steps=10, use_cpu=True, dataloader_num_workers=0, seed=0)
    options.update(TRL_SETTINGS[tool])
    if "_accum4" in tool:
        options.update(per_device_train_batch_size=max(1, args.batch // 4), gradient_accumulation_steps=4)
    if tool == "trl_onednn":
        route_by_hand()
    trainer = RewardTrainer(model=model, args=RewardConfig(**options), train_dataset=load(args.train_conv),
                            eval_dataset=load(args.eval_conv), processing_class=tokenizer)
    clock = step_clock()
    trainer.add_callback(clock)
    started = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - started
    metrics = trainer.evaluate()
    return {"accuracy": metrics.get("eval_accuracy"), "s_per_step": round(seconds / args.steps, 4), "s_median_step": steady(clock.times),
            "train_runtime": result.metrics.get("train_runtime"), "bf16": trainer.args.bf16,
            "gradient_checkpointing": trainer.args.gradient_checkpointing}


def child(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        if args.tool in PAYOFF_SETTINGS:
            result = run_payoff(args, Path(folder), args.tool)
        else:
            result = run_trl(args, Path(folder), args.tool)
    report_result(result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", default="out/rm_example/pairs.train.jsonl")
    parser.add_argument("--eval", default="out/rm_example/pairs.eval.jsonl")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--epoch", action="store_true", help="one epoch: every training pair once in each tool (sets --steps)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--defaults-repeats", type=int, default=None,
                        help="repeats of TRL at its defaults (bf16 autocast is slow on CPU); default: --repeats")
    parser.add_argument("--defaults-timeout", type=float, default=None, help="seconds before a run of TRL at its defaults is left out")
    parser.add_argument("--tools", default="payoff,trl_defaults,trl_best", help=f"of {', '.join([*PAYOFF_SETTINGS, *TRL_SETTINGS])}")
    parser.add_argument("--tool", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--train-conv", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--eval-conv", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tool:
        child(args)
        return
    work = Path(tempfile.mkdtemp(prefix="rm-bench-"))
    if not Path(args.train).exists():
        args.train, args.eval = str(procedural_pairs(work / "train.jsonl", 400, 1)), str(procedural_pairs(work / "eval.jsonl", 100, 2))
    args.train_conv = str(conversational(Path(args.train), work / "train.conv.jsonl"))
    if args.epoch:
        rows = Path(args.train_conv).read_text().splitlines()
        args.steps = len(rows) // args.batch
        Path(args.train_conv).write_text("".join(row + "\n" for row in rows[: args.steps * args.batch]))
    args.eval_conv = str(conversational(Path(args.eval), work / "eval.conv.jsonl"))
    # payoff reads the same conversational rows TRL does
    args.train, args.eval = args.train_conv, args.eval_conv
    tools = [t for t in args.tools.split(",") if t]
    results: dict[str, list[dict]] = {tool: [] for tool in tools}
    for repeat in range(args.repeats):
        for tool in tools:
            if tool == "trl_defaults" and args.defaults_repeats is not None and repeat >= args.defaults_repeats:
                continue  # interleaved, so drift on a noisy machine hits every tool alike
            command = [sys.executable, __file__, "--tool", tool, "--train", args.train, "--eval", args.eval, "--train-conv", args.train_conv,
                       "--eval-conv", args.eval_conv, "--steps", str(args.steps), "--batch", str(args.batch),
                       "--max-length", str(args.max_length), "--lr", str(args.lr)]
            result = run_child(command, tool, env=tool_env(tool),
                               timeout=args.defaults_timeout if tool == "trl_defaults" else None)
            if result is None:
                continue
            results[tool].append(result)
            print(f"repeat {repeat} {tool}: {results[tool][-1]}", file=sys.stderr, flush=True)
    table = medians(results, ("accuracy", "s_per_step", "s_median_step", "peak_rss_mb"))
    base = table.get("payoff")
    print(f"load average at the end {os.getloadavg()}")
    print(f"pairs: train {args.train}, eval {args.eval}; steps {args.steps}, batch {args.batch}, max_length {args.max_length}, lr {args.lr}")
    print(f"{'tool':<14}{'held-out acc':>14}{'s/step':>10}{'median step':>13}{'peak RSS MB':>14}{'time ratio':>12}{'RSS ratio':>11}")
    for tool, row in table.items():
        ratio = row["s_per_step"] / base["s_per_step"] if base else float("nan")
        rss = row["peak_rss_mb"] / base["peak_rss_mb"] if base else float("nan")
        print(f"{tool:<14}{row['accuracy']:>14.3f}{row['s_per_step']:>10.3f}{row['s_median_step']:>13.3f}{row['peak_rss_mb']:>14.0f}"
              f"{ratio:>12.2f}{rss:>11.2f}")
    print(json.dumps(table))


if __name__ == "__main__":
    main()
