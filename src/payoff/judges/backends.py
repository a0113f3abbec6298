"""Judge backends: a local transformers model, or any OpenAI-compatible chat-completions server.

Both answer one question for a batch of judge prompts: the probability of each allowed verdict
(``choices``, e.g. ["Yes", "No"] or ["1", ..., "5"]). The local backend reads it from the logits
of the next token after the assistant's turn opens (plus an optional answer prefix such as
"Score: "), batched, many prompts per forward pass. The server backend asks for a short greedy
reply with ``logprobs``/``top_logprobs`` and reads the verdict's probability from them where the
server gives them, else parses the text strictly (probability 1 for the parsed verdict). A call
that still fails after its retries is returned as an exception, which the judge turns into an
``error`` outcome.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import random
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from payoff.heap import held_heap
from payoff.judges import sharing

Verdict = dict[str, float]  # choice -> probability (normalised over the choices)


class JudgeCallError(RuntimeError):
    """A judge call that failed for good (after retries), with the reason."""


def _normalise(masses: dict[str, float]) -> Verdict:
    total = sum(masses.values())
    if total <= 0:
        raise JudgeCallError("no probability on any allowed verdict")
    return {k: v / total for k, v in masses.items()}


class LocalBackend:
    """A local causal LM (the embedded SmolLM2 or a folder), verdicts from next-token logits.

    ``batch_size`` prompts go through one forward (None: all of a call's prompts, up to
    ``MAX_ROWS``; a judge reward's own ``batch_size`` then sets how many that is). Prompts are
    batched shortest first so a batch pads little. With ``share_prefix`` the tokens the prompts
    share run through the model once per call (`payoff.judges.sharing`): the template's head, which
    every prompt of a call shares, and the longer prefix of each group of prompts that differ only
    in their responses (a GRPO group's completions of one question); every batch continues their
    key/value cache and computes only the rest of each prompt. Repeated prompts are judged once.
    ``None`` (the default) shares where it measured faster than plain batching (docs/judges.md):
    at least ``SHARE_MIN_TOKENS`` shared tokens per prompt on average and forwards of at least
    ``SHARE_MIN_ROWS`` prompts.

    A prompt longer than ``max_prompt_tokens`` (default: the model's context,
    ``max_position_embeddings``) is not run: past it the model's positions are untrained and a
    300,000-character answer would cost minutes of CPU. Its verdict is a `JudgeCallError`, which
    the judge turns into that sample's ``error`` outcome.

    ``precision = "bf16"`` runs the forwards under bfloat16 autocast (the weights stay float32):
    on a CPU whose bfloat16 matrix products beat its float32 ones it is faster (about 3x on a
    Zen 5 EPYC), and the verdict probabilities move by bfloat16 rounding (under 0.05 on the
    prompts tested: docs/judges.md); ``fp32`` (the default) is exact."""

    MAX_ROWS = 64
    SHARE_MIN_TOKENS = 32
    SHARE_MIN_ROWS = 2

    _cache: dict[str, tuple[Any, Any]] = {}
    _lock = threading.Lock()

    def __init__(self, model: str = "smollm2-135m-instruct", batch_size: int | None = None,
                 share_prefix: bool | None = None, max_prompt_tokens: int | None = None, precision: str = "fp32") -> None:
        if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
            raise ValueError(f"batch_size must be a whole number >= 1 (or None), got {batch_size!r}")
        self.name, self.batch_size, self.share_prefix = model, batch_size, share_prefix
        from payoff.models.precision import check  # torch, only when a local judge is made

        self.max_prompt_tokens, self.precision = max_prompt_tokens, check(precision)

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self.name not in self._cache:
                from payoff.models.attention import cpu_attention
                from payoff.models.default import load_policy, quiet_loading

                quiet_loading()
                model, tokenizer = load_policy(self.name)
                cpu_attention(model)  # short rows over a cached prefix: plain attention is faster on a CPU
                self._cache[self.name] = (model.eval(), tokenizer)
            return self._cache[self.name]

    def identity(self) -> str:
        return f"local:{self.name}" + (":bf16" if self.precision == "bf16" else "")

    def _choice_tokens(self, tokenizer: Any, choices: Sequence[str]) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for choice in choices:
            ids = set()
            for variant in (choice, " " + choice, choice.lower(), " " + choice.lower()):
                tokens = tokenizer(variant, add_special_tokens=False)["input_ids"]
                if tokens:
                    ids.add(tokens[0])
            out[choice] = ids
        return out

    def verdicts(self, prompts: Sequence[str], choices: Sequence[str], prefix: str = "") -> list[Verdict | Exception]:
        import torch

        from payoff.models.precision import autocast

        model, tokenizer = self._load()
        token_sets = self._choice_tokens(tokenizer, choices)
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) + prefix
                 for p in prompts]
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        if not ids:
            return []
        results: list[Verdict | Exception] = [JudgeCallError("not judged")] * len(ids)
        cap = self.max_prompt_tokens or int(getattr(model.config, "max_position_embeddings", 0) or 0)
        for i, row in enumerate(ids):
            if cap and len(row) > cap:
                results[i] = JudgeCallError(f"the judge prompt is {len(row)} tokens, over the local judge's cap of {cap} "
                                            "(max_prompt_tokens); not judged")
        kept = [i for i in range(len(ids)) if not cap or len(ids[i]) <= cap]
        if not kept:
            return results
        the_plan = sharing.plan(ids, kept)
        rows_per_forward = min(self.batch_size or self.MAX_ROWS, len(the_plan.rows))
        worth = rows_per_forward >= self.SHARE_MIN_ROWS and \
            sum(map(the_plan.shared, the_plan.rows)) >= self.SHARE_MIN_TOKENS * len(the_plan.rows)
        if self.share_prefix is False or (self.share_prefix is None and not worth):
            the_plan = sharing.Plan(rows=the_plan.rows, same=the_plan.same)  # whole prompts (plain batching measured faster)
        pad_id = int(tokenizer.pad_token_id or 0)
        # bf16: autocast casts the weights once per call (it keeps the copies until the context ends);
        # the heap held, so each forward reuses the memory the one before freed (payoff.heap)
        with torch.no_grad(), autocast(self.precision, model.device), held_heap():
            head = sharing.head_cache(model, ids[the_plan.rows[0]][:the_plan.head]) if the_plan.head else None
            groups = sharing.group_caches(model, ids, the_plan, head, pad_id, rows_per_forward) if the_plan.groups else None
            order = sorted(the_plan.rows, key=lambda i: len(ids[i]) - the_plan.shared(i))
            for start in range(0, len(order), rows_per_forward):
                rows = order[start:start + rows_per_forward]
                logits = sharing.last_logits(model, ids, rows, the_plan, pad_id, head, groups)
                for i, row in zip(rows, torch.softmax(logits.float(), -1)):
                    masses = {c: float(sum(row[t] for t in toks)) for c, toks in token_sets.items()}
                    try:
                        verdict = _normalise(masses)
                        verdict["_mass"] = sum(masses.values())  # how much the model put on allowed verdicts at all
                        verdict["_shared"] = float(the_plan.shared(i))  # prefix tokens computed once for the call
                        results[i] = verdict
                    except JudgeCallError as error:
                        results[i] = error
        for i, first in the_plan.same.items():  # a repeated prompt: the verdict of its first occurrence
            results[i] = dict(results[first]) if isinstance(results[first], dict) else results[first]
        return results


class OpenAIBackend:
    """Any OpenAI-compatible ``/chat/completions`` endpoint: async requests with a concurrency
    limit, a per-call timeout, retries with exponential backoff and jitter on 429, 5xx and lost
    connections (honouring ``Retry-After``), an on-disk cache of judgments keyed by (model,
    template version, prompt, sampling parameters), and token accounting."""

    def __init__(self, base_url: str, model: str = "default", api_key: str | None = None, concurrency: int = 4, timeout_s: float = 60.0,
                 retries: int = 4, backoff_s: float = 0.5, cache: str | None = "default", max_tokens: int = 8,
                 price_per_1k_input: float = 0.0, price_per_1k_output: float = 0.0) -> None:
        self.base_url, self.model = base_url.rstrip("/"), model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.concurrency, self.timeout_s, self.retries, self.backoff_s = concurrency, timeout_s, retries, backoff_s
        self.max_tokens = max_tokens
        self.prices = (price_per_1k_input, price_per_1k_output)
        self.usage = {"calls": 0, "retries": 0, "cached": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0}
        self.cache_dir = None
        if cache:
            from payoff.models.default import cache_root

            self.cache_dir = Path(cache_root() / "judgments") if cache == "default" else Path(cache)

    def identity(self) -> str:
        return f"openai:{self.base_url}:{self.model}"

    def _key(self, prompt: str | list[dict[str, Any]], version: str) -> str:
        parts = [self.model, version, prompt, self.max_tokens, "temperature=0", "top_logprobs=10"]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def _cached(self, key: str) -> dict[str, Any] | None:
        if self.cache_dir is None:
            return None
        from diskcache import Cache

        with Cache(str(self.cache_dir)) as cache:
            return cache.get(key)

    def _store(self, key: str, value: dict[str, Any]) -> None:
        if self.cache_dir is not None:
            from diskcache import Cache

            with Cache(str(self.cache_dir)) as cache:
                cache.set(key, value)

    async def _call(self, client: Any, semaphore: asyncio.Semaphore, prompt: str | list[dict[str, Any]]) -> dict[str, Any]:
        import httpx

        # a prompt is one user message, or (OpenAI grader configs) a whole list of chat messages
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        body = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens,
                "temperature": 0, "logprobs": True, "top_logprobs": 10}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                self.usage["retries"] += 1
            wait = self.backoff_s * (2 ** attempt) * (0.5 + random.random())
            try:
                async with semaphore:
                    response = await client.post(f"{self.base_url}/chat/completions", json=body, headers=headers, timeout=self.timeout_s)
                if response.status_code == 200:
                    data = response.json()
                    self.usage["calls"] += 1
                    usage = data.get("usage") or {}
                    self.usage["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
                    self.usage["completion_tokens"] += int(usage.get("completion_tokens") or 0)
                    self.usage["cost"] += (int(usage.get("prompt_tokens") or 0) * self.prices[0]
                                           + int(usage.get("completion_tokens") or 0) * self.prices[1]) / 1000
                    return data
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in (408, 409, 429) and response.status_code < 500:
                    raise JudgeCallError(last)  # a 4xx will not get better by asking again
                retry_after = response.headers.get("retry-after")
                if retry_after:
                    try:
                        wait = max(wait, float(retry_after))
                    except ValueError:
                        pass
            except (httpx.TransportError, httpx.TimeoutException) as error:
                last = f"{type(error).__name__}: {error}"
            if attempt < self.retries:
                await asyncio.sleep(min(wait, 30.0))
        raise JudgeCallError(f"judge call failed after {self.retries + 1} attempts: {last}")

    async def _all(self, prompts: Sequence[str | list[dict[str, Any]]]) -> list[Any]:
        import httpx

        semaphore = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient() as client:
            return await asyncio.gather(*(self._call(client, semaphore, p) for p in prompts), return_exceptions=True)

    def replies(self, prompts: Sequence[str | list[dict[str, Any]]], version: str) -> list[dict[str, Any] | Exception]:
        """The raw reply per prompt (from the cache where present)."""
        keys = [self._key(p, version) for p in prompts]
        out: list[Any] = [self._cached(k) for k in keys]
        self.usage["cached"] += sum(o is not None for o in out)
        missing = [i for i, o in enumerate(out) if o is None]
        if missing:
            started = time.perf_counter()
            fetched = asyncio.run(self._all([prompts[i] for i in missing]))
            for i, reply in zip(missing, fetched):
                out[i] = reply
                if isinstance(reply, dict):
                    reply["_seconds"] = round(time.perf_counter() - started, 3)
                    self._store(keys[i], reply)
        return out

    def verdicts(self, prompts: Sequence[str], choices: Sequence[str], prefix: str = "", version: str = "1",
                 parse: Any = None) -> list[Verdict | Exception]:
        results: list[Verdict | Exception] = []
        for reply in self.replies(prompts, version):
            if isinstance(reply, BaseException):
                results.append(reply if isinstance(reply, Exception) else JudgeCallError(repr(reply)))
                continue
            try:
                results.append(_verdict_from_reply(reply, choices, parse))
            except Exception as error:  # noqa: BLE001 - an unreadable reply is this sample's error
                results.append(error)
        return results


def _verdict_from_reply(reply: dict[str, Any], choices: Sequence[str], parse: Any) -> Verdict:
    choice = (reply.get("choices") or [{}])[0]
    text = (choice.get("message") or {}).get("content") or ""
    content = ((choice.get("logprobs") or {}).get("content") or [])
    # the first token that is not whitespace or a "Score:" lead-in carries the verdict
    for position in content:
        token = position.get("token", "").strip().lower()
        if not token or token in ("score", ":", "score:"):
            continue
        masses = {c: 0.0 for c in choices}
        for alternative in position.get("top_logprobs") or [position]:
            name = alternative.get("token", "").strip().lower()
            for c in choices:
                if name == c.lower():
                    masses[c] += math.exp(alternative.get("logprob", -math.inf))
        if sum(masses.values()) > 0:
            verdict = _normalise(masses)
            verdict["_mass"] = sum(masses.values())
            return verdict
        break
    if parse is None:
        raise JudgeCallError(f"no verdict in the reply {text[:80]!r}")
    parsed = parse(text)  # raises VerdictError on anything but the asked-for form
    return {c: float(c == parsed) for c in choices} | {"_mass": 1.0}


def make_backend(backend: str = "local", model: str | None = None, base_url: str | None = None, **options: Any) -> Any:
    if backend == "local":
        local = ("batch_size", "share_prefix", "max_prompt_tokens", "precision")
        return LocalBackend(model or "smollm2-135m-instruct", **{k: v for k, v in options.items() if k in local})
    if backend == "openai":
        if not base_url:
            raise ValueError("backend 'openai' needs base_url (e.g. http://127.0.0.1:8000/v1)")
        return OpenAIBackend(base_url, model or "default", **options)
    raise ValueError("backend must be 'local' or 'openai'")
