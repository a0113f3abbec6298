"""Reward-guided step-level search (generation mode): beam search, DVTS and particle filtering.

A partial solution is a list of steps. Each round the policy extends every live path by one step
(sampling until the step separator, blank lines by default, EOS, or ``step_tokens``) and a step
scorer scores the new prefix: any payoff reward through the engine on (prompt, steps so far),
reading ``info["step_scores"][-1]`` where the reward reports step scores (a PRM), else its score.
Every generated token counts against the method's budget, discarded paths included.

- ``beam`` (search-and-learn): N paths; each round keep the best N/M by score and give each M
  children; stop when N paths have finished or after ``max_steps``.
- ``dvts`` (diverse verifier tree search): N/M independent subtrees of width M; each keeps only
  its best child per round and expands it M times; the answer is the best subtree leaf.
- ``particle`` (Puri et al. 2025): N particles; after each step they are resampled, with
  replacement and a seeded RNG, in proportion to softmax(logit(score) / temperature); finished
  particles stay in the pool and are resampled like the others.

Each method answers with the best-scored finished path (live paths when none finished).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Path:
    steps: list[str] = field(default_factory=list)
    score: float = 0.0
    done: bool = False

    def text(self, separator: str) -> str:
        return separator.join(self.steps)


@dataclass
class Search:
    """One task's expansion machinery: ``generate(texts) -> [(step_text, ended, tokens)]`` gives
    one sampled step per prefix text; ``score(prefixes) -> [float | None]`` scores completions."""

    generate: Callable[[list[str]], list[tuple[str, bool, int]]]
    score: Callable[[list[str]], list[float | None]]
    separator: str = "\n\n"
    tokens: int = 0

    def extend(self, paths: Sequence[Path]) -> list[Path]:
        prefixes = [p.text(self.separator) + (self.separator if p.steps else "") for p in paths]
        results = self.generate(prefixes)
        children = []
        for path, (step, ended, tokens) in zip(paths, results):
            self.tokens += tokens
            step = step.split(self.separator)[0].strip() if self.separator in step else step.strip()
            children.append(Path(path.steps + ([step] if step else []), 0.0, ended or not step))
        scores = self.score([c.text(self.separator) for c in children])
        for child, value in zip(children, scores):
            child.score = value if value is not None else -math.inf  # an unscored step never wins
        return children


def _best(paths: Sequence[Path]) -> Path:
    return max(paths, key=lambda p: p.score)


def _answer(finished: list[Path], alive: list[Path]) -> Path:
    return _best(finished) if finished else _best(alive)


def beam(search: Search, n: int, width: int, max_steps: int) -> Path:
    keep = max(1, n // width)
    active, finished = [Path() for _ in range(n)], []
    for _ in range(max_steps):
        children = search.extend(active)
        finished += [c for c in children if c.done]
        alive = [c for c in children if not c.done]
        if not alive or len(finished) >= n:
            return _answer(finished, alive)
        kept = sorted(alive, key=lambda p: -p.score)[:keep]
        active = [Path(list(p.steps), p.score) for p in kept for _ in range(width)]
    return _answer(finished, alive)


def dvts(search: Search, n: int, width: int, max_steps: int) -> Path:
    trees = max(1, n // width)
    active: list[list[Path]] = [[Path() for _ in range(width)] for _ in range(trees)]
    leaves: list[Path | None] = [None] * trees
    for _ in range(max_steps):
        live = [t for t in range(trees) if leaves[t] is None]
        if not live:
            break
        children = search.extend([p for t in live for p in active[t]])
        for k, t in enumerate(live):
            mine = children[k * width:(k + 1) * width]
            best = _best(mine)
            if best.done:
                leaves[t] = best
            else:
                active[t] = [Path(list(best.steps), best.score) for _ in range(width)]
    ends = [leaf if leaf is not None else _best(active[t]) for t, leaf in enumerate(leaves)]
    finished = [p for p in ends if p.done]
    return _answer(finished, ends)


def resample_weights(scores: Sequence[float], temperature: float = 1.0) -> list[float]:
    """softmax(logit(s) / temperature) over the particles' scores (clamped into (0, 1))."""
    logits = []
    for s in scores:
        p = min(max(s, 1e-6), 1 - 1e-6) if math.isfinite(s) else 1e-6
        logits.append(math.log(p / (1 - p)) / temperature)
    top = max(logits)
    exps = [math.exp(v - top) for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def particle(search: Search, n: int, max_steps: int, temperature: float = 1.0, seed: int = 0) -> Path:
    rng = random.Random(seed)
    particles = [Path() for _ in range(n)]
    for _ in range(max_steps):
        live = [i for i, p in enumerate(particles) if not p.done]
        if not live:
            break
        for i, child in zip(live, search.extend([particles[i] for i in live])):
            particles[i] = child
        weights = resample_weights([p.score for p in particles], temperature)
        particles = [Path(list(p.steps), p.score, p.done) for p in rng.choices(particles, weights=weights, k=n)]
    finished = [p for p in particles if p.done]
    return _answer(finished, particles)


def run_search(method: str, search: Search, n: int, width: int, max_steps: int, temperature: float = 1.0, seed: int = 0) -> Path:
    if method == "beam":
        return beam(search, n, width, max_steps)
    if method == "dvts":
        return dvts(search, n, width, max_steps)
    if method == "particle":
        return particle(search, n, max_steps, temperature, seed)
    raise ValueError(f"unknown search method {method!r}; choose beam, dvts or particle")


def policy_search(model: Any, tokenizer: Any, prompt: Any, reward: Any, reference: Any = None, step_tokens: int = 48,
                  separator: str = "\n\n", temperature: float = 1.0, batch_size: int = 32, workers: int | None = 0,
                  engine: Any = None) -> Search:
    """A `Search` for one task on a local policy (transformers generate, stop at the separator)
    with ``reward`` as the step scorer, run through the engine (``engine``, an open `Engine` to
    reuse across tasks, else one per call with ``workers``)."""
    from payoff.core import Sample
    from payoff.engine import score
    from payoff.models.rollout import HFGenerator, SamplingParams, render_prompt

    generator = HFGenerator(model, tokenizer, batch_size=batch_size)
    head = render_prompt(tokenizer, prompt)
    params = SamplingParams(max_new_tokens=step_tokens, temperature=temperature, stop=[separator])

    def generate(prefixes: list[str]) -> list[tuple[str, bool, int]]:
        rollouts = generator.generate([head + p for p in prefixes], params)
        return [(text, not truncated and separator not in text, len(ids))
                for text, truncated, ids in zip(rollouts.texts, rollouts.truncated, rollouts.completion_ids)]

    def score_prefixes(texts: list[str]) -> list[float | None]:
        samples = [Sample(completion=t, prompt=prompt, reference=reference) for t in texts]
        outcomes = engine.score(samples) if engine is not None else score(samples, reward, workers=workers)
        values: list[float | None] = []
        for o in outcomes:
            steps = o.info.get("step_scores") if o.status == "ok" else None
            values.append(float(steps[-1]) if steps else (o.score if o.status == "ok" else None))
        return values

    return Search(generate, score_prefixes, separator)


def search_curves(tasks: Sequence[dict[str, Any]], methods: Sequence[str], ns: Sequence[int], reward: Any, gold: Any,
                  policy: str = "smollm2-135m-instruct", width: int = 4, max_steps: int = 6, step_tokens: int = 48,
                  temperature: float = 1.0, seed: int = 0, gold_threshold: float = 1.0, workers: int | None = 0,
                  separator: str = "\n\n", timeout_s: float | None = None) -> dict[str, Any]:
    """Accuracy (by ``gold``) and mean tokens spent per prompt for each search method and N, with
    2.5-97.5% bands from resampling the prompts (one search per prompt and N)."""
    import statistics

    import torch

    from payoff.core import Sample
    from payoff.engine import Engine
    from payoff.models.default import load_policy

    model, tokenizer = load_policy(policy)
    model.eval()
    curves: dict[str, dict[int, float]] = {}
    bands: dict[str, dict[int, list[float]]] = {}
    tokens: dict[str, dict[int, float]] = {}
    # One engine per reward for the whole run: a model-backed scorer (a PRM) loads once per worker.
    with Engine(reward, workers=workers or 0, timeout_s=timeout_s) as scorer, Engine(gold, workers=workers or 0, timeout_s=timeout_s) as judge:
        for method in methods:
            curves[method], bands[method], tokens[method] = {}, {}, {}
            for n in ns:
                torch.manual_seed(seed * 1_000_003 + n)
                answers, spent = [], []
                for k, task in enumerate(tasks):
                    search = policy_search(model, tokenizer, task["prompt"], reward, task.get("reference"), step_tokens, separator,
                                           temperature, engine=scorer)
                    answers.append(run_search(method, search, n, min(width, n), max_steps, seed=seed + k).text(separator))
                    spent.append(search.tokens)
                checks = judge.score([Sample(completion=a, prompt=t["prompt"], reference=t.get("reference"))
                                      for a, t in zip(answers, tasks)])
                hits = [float(o.status == "ok" and o.score is not None and o.score >= gold_threshold) for o in checks]
                curves[method][n] = statistics.fmean(hits) if hits else 0.0
                rng = random.Random(seed)
                boots = sorted(statistics.fmean(rng.choices(hits, k=len(hits))) for _ in range(200)) if hits else [0.0]
                bands[method][n] = [boots[int(0.025 * (len(boots) - 1))], boots[int(round(0.975 * (len(boots) - 1)))]]
                tokens[method][n] = statistics.fmean(spent) if spent else 0.0
    return {"curves": curves, "bands": bands, "tokens": tokens}
