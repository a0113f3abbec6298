"""Micro-batches under a token budget, freed memory handed back to the system, and the bf16
autocast a run's ``precision`` selects (float32 master weights, bfloat16 matrix products)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from payoff.models.precision import autocast
from payoff.runs.config import ConfigError, DatasetRunConfig, PairDataConfig, load_toml_config
from payoff.runs.memory import token_chunks
from payoff.runs.optim import adamw


def test_held_heap_reuses_what_a_step_freed_and_hands_it_back_after() -> None:
    # a real process: one step's tensors (ten 10 MB blocks, or one 100 MB block: an embedding's
    # gradient) allocated, written and freed three times per setting. By default glibc cuts the
    # heap back once more than 64 MB lies free at its top and unmaps a block over 32 MB on free, so
    # every step faults its memory in anew (25,600 pages); held, only the first step does (a block
    # over 32 MB only with large_blocks); on leaving, the freed memory goes back
    script = textwrap.dedent("""
        import ctypes, ctypes.util, resource
        from payoff.heap import held_heap
        libc = ctypes.CDLL(ctypes.util.find_library('c'))
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        libc.free.argtypes = [ctypes.c_void_p]
        def rss():
            return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])
        def steps(size, count):
            faults = []
            for _ in range(3):
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                blocks = [libc.malloc(size) for _ in range(count)]
                for block in blocks:
                    ctypes.memset(block, 1, size)
                for block in blocks:
                    libc.free(block)
                faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
            return faults
        small, large = (10 * 2**20, 10), (100 * 2**20, 1)
        out = [steps(*small), steps(*large)]
        with held_heap():  # the large block first: a free chunk the small ones left would serve it
            out += [steps(*large), steps(*small)]
        with held_heap(large_blocks=True):
            out.append(steps(*large))
            inside = rss()
        print(*(n for row in out for n in row), inside, rss())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    numbers = list(map(int, done.stdout.split()))
    plain_small, plain_large, held_large_mapped, held_small, held_large = (numbers[i:i + 3] for i in range(0, 15, 3))
    inside, after = numbers[15:]
    assert min(plain_small[1:]) > 20_000 and min(plain_large) > 20_000  # every step faults its memory in anew
    assert max(held_small[1:]) < 1_000  # held: the first step faults the blocks in, the rest reuse them
    assert min(held_large_mapped) > 20_000  # a block over 32 MB keeps its own mapping...
    assert max(held_large[1:]) < 1_000  # ...unless large blocks are held too
    assert inside - after > 80_000  # kB: the held memory handed back on leaving


class Config(DatasetRunConfig):
    data: PairDataConfig = PairDataConfig(train="unused")


def test_token_chunks_bound_the_padded_tokens_and_go_longest_first() -> None:
    widths = {0: 10, 1: 200, 2: 30, 3: 190, 4: 5, 5: 60, 6: 400}
    chunks = token_chunks(list(widths), widths.__getitem__, max_rows=4, max_tokens=800, rows_per_example=2)
    assert sorted(i for chunk in chunks for i in chunk) == sorted(widths)  # every example once
    assert chunks[0] == [6]  # wider than the budget's half: alone
    for chunk in chunks:
        assert len(chunk) <= 4
        assert [widths[i] for i in chunk] == sorted((widths[i] for i in chunk), reverse=True)
        if len(chunk) > 1:
            assert len(chunk) * 2 * max(widths[i] for i in chunk) <= 800
    # no budget: only the row bound, still longest first; the same arguments give the same batches
    assert token_chunks(list(widths), widths.__getitem__, 3, 0) == [[6, 1, 3], [5, 2, 0], [4]]
    assert token_chunks(list(widths), widths.__getitem__, 4, 800, 2) == chunks


def test_release_hands_freed_heap_back() -> None:
    # a real process: fragment glibc's heap with many mid-sized blocks, free all but every 50th,
    # and compare the RSS before and after release()
    script = textwrap.dedent("""
        import ctypes, ctypes.util
        from payoff.heap import release
        def rss():
            return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])
        libc = ctypes.CDLL(ctypes.util.find_library('c'))
        libc.malloc.restype = ctypes.c_void_p
        libc.free.argtypes = [ctypes.c_void_p]
        blocks = [libc.malloc(64 * 1024) for _ in range(4000)]
        for b in blocks:
            ctypes.memset(b, 1, 64 * 1024)
        for n, b in enumerate(blocks):
            if n % 50:
                libc.free(b)
        before = rss()
        release()
        print(before, rss())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    before, after = map(int, done.stdout.split())
    assert before - after > 100_000  # kB: most of the ~250 MB freed went back


@pytest.mark.parametrize("users", [None, "ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"])
def test_the_kernel_cache_is_bounded_unless_the_user_sized_it(users, monkeypatch) -> None:
    from payoff.heap import KERNEL_CACHE_CAPACITY, bounded_kernel_cache

    for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"):
        monkeypatch.delenv(name, raising=False)
    if users:
        monkeypatch.setenv(users, "4096")
    bounded_kernel_cache()
    if users:
        assert os.environ[users] == "4096" and len([k for k in os.environ if k.endswith("PRIMITIVE_CACHE_CAPACITY")]) == 1
    else:
        assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(KERNEL_CACHE_CAPACITY) and KERNEL_CACHE_CAPACITY < 1024


def test_precision_is_a_validated_run_option() -> None:
    assert Config().precision == "fp32"
    assert Config.model_validate({"precision": "bf16"}).precision == "bf16"
    with pytest.raises(ConfigError, match="precision"):
        load_toml_config(Config, None, ["precision='fp16'"])
    with pytest.raises(ValueError, match="precision"):
        autocast("fp16")


def test_bf16_autocast_keeps_float32_master_weights() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimizer = adamw(model.parameters(), 1e-2)
    x = torch.randn(32, 8)
    with autocast("bf16"):
        out = model(x)
        assert out.dtype == torch.bfloat16  # the matrix products ran in bfloat16
        loss = out.float().pow(2).mean()
    loss.backward()
    optimizer.step()
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in model.parameters())
    with autocast("fp32"):
        assert model(x).dtype == torch.float32
    with torch.no_grad(), autocast("bf16"):
        close = model(x).float()
    assert torch.allclose(close, model(x), atol=0.05, rtol=0.05)  # bf16 rounding, same function


def test_a_bf16_grpo_run_trains_float32_weights(tmp_path) -> None:
    import json
    import math

    from payoff.rl.config import TrainConfig
    from payoff.rl.loop import train
    from tests.rl.toy import tiny_model, tokenizer, vowel_share

    model = tiny_model()
    config = TrainConfig.model_validate({
        "seed": 0, "steps": 2, "run_dir": str(tmp_path / "run"), "checkpoint_every": 0, "precision": "bf16",
        "model": {"chat_template": False}, "rollout": {"group_size": 4, "prompts_per_step": 2, "max_new_tokens": 6, "batch_size": 8},
        "optim": {"lr": 5e-2}, "engine": {"workers": 0},
        "log": {"progress": False, "tensorboard": False, "plot": False, "samples_every": 0}})
    before = [p.detach().clone() for p in model.parameters()]
    rows = [{"prompt": f"Write a word number {i}.", "reference": None} for i in range(16)]
    train(config, model=model, tokenizer=tokenizer(), reward=vowel_share, train_rows=rows, eval_rows=rows[:4])
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the master weights
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))  # and they trained
    rows_logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows_logged) == 2 and all(math.isfinite(r["loss"]) for r in rows_logged)


def test_bf16_grpo_loss_and_gradient_match_float32() -> None:
    # the GRPO surrogate of a real (tiny Llama) policy under bf16 autocast against float32: the
    # log-probs within 0.02 nats per token (bfloat16 keeps 8 bits of mantissa), the loss within 2%
    # of its size, the gradient pointing the same way (cosine > 0.99)
    from payoff.models.logprobs import pack, token_logprobs
    from payoff.rl.algorithms import clipped_policy_loss, grpo_advantages
    from tests.rl.toy import tiny_model

    model = tiny_model(seed=1)
    generator = torch.Generator().manual_seed(0)
    prompts = [torch.randint(5, 200, (int(n),), generator=generator).tolist() for n in torch.randint(4, 12, (8,), generator=generator)]
    answers = [torch.randint(5, 200, (int(n),), generator=generator).tolist() for n in torch.randint(2, 9, (8,), generator=generator)]
    batch = pack(prompts, answers, 0)
    adv = grpo_advantages(torch.rand(2, 4, generator=generator), torch.ones(2, 4, dtype=torch.bool)).flatten()

    with torch.no_grad():  # the rollout's log-probs, from float32, a little off-policy so the ratio is not 1
        old = token_logprobs(model, batch)[0] + 0.1 * torch.randn(batch.completion_mask.shape, generator=generator)

    def loss_and_grad(precision: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        with autocast(precision):
            logp, _ = token_logprobs(model, batch)
            loss, _ = clipped_policy_loss(logp, old, adv, batch.completion_mask)
        loss.backward()
        return logp.detach(), loss.detach(), torch.cat([p.grad.flatten() for p in model.parameters()])

    logp32, loss32, grad32 = loss_and_grad("fp32")
    logp16, loss16, grad16 = loss_and_grad("bf16")
    assert logp16.dtype == torch.float32  # log-probs are computed in float32 from the bf16 logits
    assert (logp16 - logp32).abs().max() < 0.02
    assert abs(float(loss16 - loss32)) <= 0.02 * abs(float(loss32)) + 1e-4
    assert torch.nn.functional.cosine_similarity(grad16, grad32, dim=0) > 0.99
