"""fp32 against bf16 autocast (payoff's ``precision``) on the embedded SmolLM2-135M-Instruct, in
one process, interleaved so drift in machine speed hits all: one GRPO-sized forward and backward
of the log-probs (32 sequences of 40 prompt + 16 completion tokens) and sampling 16 tokens for 32
prompts. fp32 runs twice: with its matrix products in PyTorch's default library (MKL) and routed
to oneDNN as `payoff.models.matmul` does where its probe finds that exact and faster. Prints the
seconds of each per round and the ratios to the default fp32.

    python benchmarks/bf16_step.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from payoff.models.default import load_policy
from payoff.models.logprobs import pack, token_logprobs
from payoff.models.matmul import ROUTE, fast_fp32_matmul
from payoff.models.precision import autocast, native_bf16


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model, tokenizer = load_policy()
    model.train()
    generator = torch.Generator().manual_seed(0)
    prompts = [torch.randint(100, 40000, (40,), generator=generator).tolist() for _ in range(32)]
    answers = [torch.randint(100, 40000, (16,), generator=generator).tolist() for _ in range(32)]
    batch = pack(prompts, answers, int(tokenizer.pad_token_id))
    encoded = tokenizer(["What is 3 + 4?"] * 32, return_tensors="pt")

    route = fast_fp32_matmul()  # load_policy ran it; what it decided is printed below

    def setting(kind: str) -> str:
        """``kind``: fp32 (PyTorch's default library), fp32-onednn or bf16; returns the precision."""
        torch.backends.mkldnn.matmul.fp32_precision = ROUTE if kind == "fp32-onednn" else "none"
        return "bf16" if kind == "bf16" else "fp32"

    def train_step(kind: str) -> float:
        precision = setting(kind)
        started = time.perf_counter()
        with autocast(precision):
            logp, _ = token_logprobs(model, batch)
            logp.sum().backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    def sample(kind: str) -> float:
        precision = setting(kind)
        started = time.perf_counter()
        with torch.no_grad(), autocast(precision):
            model.generate(**encoded, max_new_tokens=16, do_sample=True, pad_token_id=tokenizer.pad_token_id)
        return time.perf_counter() - started

    print(f"native bf16 on this CPU: {native_bf16()}; payoff's float32 route here: {route.library} ({route.why})")
    kinds = ("fp32", "fp32-onednn", "bf16")
    for kind in kinds:
        train_step(kind)  # warm-up
    for _ in range(args.rounds):
        steps = {kind: train_step(kind) for kind in kinds}
        draws = {kind: sample(kind) for kind in kinds}
        for label, times in (("forward+backward", steps), ("generate", draws)):
            print(f"{label:<17}" + " | ".join(f"{kind} {t:.2f} s ({times['fp32'] / t:.2f}x)" for kind, t in times.items()), flush=True)


if __name__ == "__main__":
    main()
