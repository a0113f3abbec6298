"""fp32 against bf16 autocast (payoff's ``precision``) on the embedded SmolLM2-135M-Instruct, in
one process, interleaved so drift in machine speed hits both: one GRPO-sized forward and backward
of the log-probs (32 sequences of 40 prompt + 16 completion tokens) and sampling 16 tokens for 32
prompts. Prints the seconds of each and the fp32/bf16 ratio per round.

    python benchmarks/bf16_step.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from payoff.models.default import load_policy
from payoff.models.logprobs import pack, token_logprobs
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

    def train_step(precision: str) -> float:
        started = time.perf_counter()
        with autocast(precision):
            logp, _ = token_logprobs(model, batch)
            logp.sum().backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    def sample(precision: str) -> float:
        started = time.perf_counter()
        with torch.no_grad(), autocast(precision):
            model.generate(**encoded, max_new_tokens=16, do_sample=True, pad_token_id=tokenizer.pad_token_id)
        return time.perf_counter() - started

    print(f"native bf16 on this CPU: {native_bf16()}")
    train_step("fp32"), train_step("bf16")  # warm-up
    for _ in range(args.rounds):
        a, b = train_step("fp32"), train_step("bf16")
        c, d = sample("fp32"), sample("bf16")
        print(f"forward+backward fp32 {a:.2f} s, bf16 {b:.2f} s ({a / b:.2f}x) | generate fp32 {c:.2f} s, bf16 {d:.2f} s ({c / d:.2f}x)",
              flush=True)


if __name__ == "__main__":
    main()
