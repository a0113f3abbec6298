"""payoff's DPO against TRL's DPOTrainer, side by side, on one CPU machine.

Same model (the embedded SmolLM2-135M-Instruct, full fine-tuning, the reference the base model),
same pairs (conversational), beta, batch size, max length, learning rate (linear decay, no
warmup) and steps. TRL runs at its defaults (DPOConfig turns gradient checkpointing and bf16 on)
and at its best sensible CPU setting (both off, and precompute_ref_log_probs, as payoff computes
the reference's log-probs before training and keeps no reference copy). Each run is its own process. Reports held-out reward accuracy (each
tool's own metric: the implicit reward of the chosen answer above the rejected one's, on held-out
pairs cut to whole batches so both count the same thing), s/step of the training loop (both
compute the reference's log-probs before it) and peak RSS; medians of --repeats.

    python benchmarks/dpo_vs_trl.py [--train PAIRS] [--eval PAIRS] [--steps 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_runs import medians, report_result, run_child  # noqa: E402
from rm_vs_trl import conversational, procedural_pairs  # noqa: E402 - the same pair builders


def whole_batches(path: Path, batch: int) -> Path:
    """Cut a pair file to a multiple of ``batch`` pairs: TRL reports the mean of its per-batch
    accuracies, which is the per-pair accuracy payoff reports only when every batch is full."""
    lines = path.read_text().splitlines()
    path.write_text("".join(line + "\n" for line in lines[: len(lines) // batch * batch]))
    return path


def run_payoff(args: argparse.Namespace, folder: Path) -> dict:
    from payoff.dpo.config import load_dpo_config
    from payoff.dpo.train import train_dpo

    overrides = [f"data.train='{args.train}'", f"data.eval='{args.eval}'", f"steps={args.steps}", f"run_dir='{folder / 'payoff'}'",
                 "checkpoint_every=0", f"optim.lr={args.lr}", f"optim.batch_size={args.batch}", f"optim.micro_batch={args.batch}",
                 f"model.max_length={args.max_length}", f"algorithm.beta={args.beta}", "log.progress=false", "log.tensorboard=false",
                 "log.plot=false"]
    summary = train_dpo(load_dpo_config(None, overrides))
    return {"accuracy": summary["reward_accuracy_after"], "s_per_step": summary["seconds_per_step"]}


def run_trl(args: argparse.Namespace, folder: Path, best: bool) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from payoff.models.default import policy_path

    path = policy_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    load = lambda p: Dataset.from_list([json.loads(line) for line in Path(p).read_text().splitlines()])  # noqa: E731
    options = dict(output_dir=str(folder / "trl"), max_steps=args.steps, per_device_train_batch_size=args.batch,
                   per_device_eval_batch_size=args.batch, learning_rate=args.lr, max_length=args.max_length, beta=args.beta,
                   lr_scheduler_type="linear", warmup_steps=0, report_to="none", save_strategy="no", eval_strategy="no",
                   logging_steps=10, use_cpu=True, dataloader_num_workers=0, seed=0)
    if best:
        options.update(gradient_checkpointing=False, bf16=False, precompute_ref_log_probs=True)
    trainer = DPOTrainer(model=model, args=DPOConfig(**options), train_dataset=load(args.train_conv), eval_dataset=load(args.eval_conv),
                         processing_class=tokenizer)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    metrics = trainer.evaluate()
    return {"accuracy": metrics.get("eval_rewards/accuracies"), "s_per_step": round(seconds / args.steps, 4)}


def child(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        result = run_payoff(args, Path(folder)) if args.tool == "payoff" else run_trl(args, Path(folder), best=args.tool == "trl_best")
    report_result(result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", default="out/rm_example/pairs.train.jsonl")
    parser.add_argument("--eval", default="out/rm_example/pairs.eval.jsonl")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-6)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--defaults-repeats", type=int, default=None,
                        help="repeats of TRL at its defaults (bf16 autocast is slow on CPU); default: --repeats")
    parser.add_argument("--tools", default="payoff,trl_defaults,trl_best", help="which of payoff, trl_defaults, trl_best to run")
    parser.add_argument("--tool", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--train-conv", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--eval-conv", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tool:
        child(args)
        return
    work = Path(tempfile.mkdtemp(prefix="dpo-bench-"))
    if not Path(args.train).exists():
        args.train, args.eval = str(procedural_pairs(work / "train.jsonl", 400, 1)), str(procedural_pairs(work / "eval.jsonl", 100, 2))
    args.train_conv = args.train = str(conversational(Path(args.train), work / "train.conv.jsonl"))
    args.eval_conv = args.eval = str(whole_batches(conversational(Path(args.eval), work / "eval.conv.jsonl"), args.batch))
    tools = tuple(t for t in ("payoff", "trl_defaults", "trl_best") if t in args.tools.split(","))
    results: dict[str, list[dict]] = {tool: [] for tool in tools}
    for repeat in range(args.repeats):
        for tool in tools:
            if tool == "trl_defaults" and args.defaults_repeats is not None and repeat >= args.defaults_repeats:
                continue
            command = [sys.executable, __file__, "--tool", tool, "--train", args.train, "--eval", args.eval, "--train-conv", args.train_conv,
                       "--eval-conv", args.eval_conv, "--steps", str(args.steps), "--batch", str(args.batch), "--max-length",
                       str(args.max_length), "--lr", str(args.lr), "--beta", str(args.beta)]
            result = run_child(command, tool)
            if result is None:
                continue
            results[tool].append(result)
            print(f"repeat {repeat} {tool}: {results[tool][-1]}", file=sys.stderr, flush=True)
    table = medians(results, ("accuracy", "s_per_step", "peak_rss_mb"))
    base = table.get("payoff")
    print(f"pairs: {args.train}; steps {args.steps}, batch {args.batch}, max_length {args.max_length}, lr {args.lr}, beta {args.beta}")
    print(f"{'tool':<14}{'held-out acc':>14}{'s/step':>10}{'peak RSS MB':>14}{'time ratio':>12}{'RSS ratio':>11}")
    for tool, row in table.items():
        print(f"{tool:<14}{row['accuracy']:>14.3f}{row['s_per_step']:>10.3f}{row['peak_rss_mb']:>14.0f}"
              f"{row['s_per_step'] / base['s_per_step'] if base else float('nan'):>12.2f}"
              f"{row['peak_rss_mb'] / base['peak_rss_mb'] if base else float('nan'):>11.2f}")
    print(json.dumps(table))


if __name__ == "__main__":
    main()
