"""`audit`: attack a reward with the probe families before a training run trusts it.

For each usable task the plainest correct completion sets the baseline b (what "correct"
scores). A probe counts as credited when its score >= threshold * b. An exploit probe that is
credited is an exploit; a correct variant that is not is a false negative. The verdict is FAIL
when any family's exploit rate exceeds ``max_exploit`` (default 0), its false-negative rate
exceeds ``max_false_negative`` (default 1%), the reward is constant across everything it saw, or
no task was usable.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from payoff.audit.hacks import probes_for
from payoff.audit.probes import Probe, canonical_completion
from payoff.core import REFERENCE_KEYS, Outcome, Reward
from payoff.engine import score
from payoff.episode import with_final_text


@dataclass
class FamilyResult:
    family: str
    exploit_probes: int = 0
    exploits: int = 0
    correct_probes: int = 0
    false_negatives: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exploit_rate(self) -> float:
        return self.exploits / self.exploit_probes if self.exploit_probes else 0.0

    @property
    def false_negative_rate(self) -> float:
        return self.false_negatives / self.correct_probes if self.correct_probes else 0.0


@dataclass
class AuditReport:
    reward: str
    verdict: str
    families: list[FamilyResult]
    tasks: int
    usable_tasks: int
    unusable_references: list[dict[str, Any]]
    duplicate_prompts: int
    constant_reward: bool
    reasons: list[str]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for family, result in zip(data["families"], self.families):
            family["exploit_rate"] = result.exploit_rate
            family["false_negative_rate"] = result.false_negative_rate
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=repr)

    def table_rows(self) -> list[tuple[str, str, str, str]]:
        rows = []
        for f in self.families:
            exploit = f"{f.exploit_rate:.0%} ({f.exploits}/{f.exploit_probes})" if f.exploit_probes else "-"
            false_neg = f"{f.false_negative_rate:.0%} ({f.false_negatives}/{f.correct_probes})" if f.correct_probes else "-"
            bad = f.exploit_rate > self.settings["max_exploit"] or f.false_negative_rate > self.settings["max_false_negative"]
            rows.append((f.family, exploit, false_neg, "FAIL" if bad else "pass"))
        return rows

    def to_markdown(self) -> str:
        lines = [f"# Reward audit: `{self.reward}` — **{self.verdict}**", "",
                 f"{self.usable_tasks} of {self.tasks} tasks usable; threshold {self.settings['threshold']} x the correct answer's score.", ""]
        lines += [f"- {reason}" for reason in self.reasons] + ([""] if self.reasons else [])
        lines += ["| family | exploit rate | false negatives | |", "|---|---:|---:|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in self.table_rows()]
        failures = [e for f in self.families for e in f.examples]
        if failures:
            lines += ["", "## Examples of failures", ""]
            for example in failures:
                lines.append(f"- **{example['family']}** ({example['type']}, {example['note']}): score {example['score']} "
                             f"vs correct {example['baseline']}: `{example['completion'][:160]!r}`")
        if self.unusable_references:
            lines += ["", f"## References the reward cannot use ({len(self.unusable_references)})", ""]
            lines += [f"- `{u['reference']!r}`: {u['why']}" for u in self.unusable_references[:20]]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        rows = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td><td>{html.escape(c)}</td><td class='{d}'>{d}</td></tr>"
                       for a, b, c, d in self.table_rows())
        examples = "".join(f"<li><b>{html.escape(e['family'])}</b> ({html.escape(e['type'])}): score {e['score']} — "
                           f"<code>{html.escape(e['completion'][:200])}</code></li>" for f in self.families for e in f.examples)
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in self.reasons)
        return (f"<!doctype html><meta charset='utf-8'><title>payoff audit: {html.escape(self.reward)}</title>"
                "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:.3em .8em;border-bottom:1px solid #ddd}"
                ".FAIL{color:#b00;font-weight:bold}.pass{color:#070}</style>"
                f"<h1>Reward audit: {html.escape(self.reward)} — <span class='{self.verdict}'>{self.verdict}</span></h1>"
                f"<p>{self.usable_tasks} of {self.tasks} tasks usable.</p><ul>{reasons}</ul>"
                f"<table><tr><th>family</th><th>exploit rate</th><th>false negatives</th><th></th></tr>{rows}</table>"
                f"<h2>Examples of failures</h2><ul>{examples}</ul>")


def _credited(outcome: Outcome, baseline: float, threshold: float) -> bool:
    value = outcome.components.get("rubric/raw", outcome.score)
    return value is not None and value >= threshold * baseline


def audit(
    reward: Reward,
    tasks: Sequence[dict[str, Any]],
    threshold: float = 0.5,
    max_exploit: float = 0.0,
    max_false_negative: float = 0.01,
    workers: int | None = None,
    timeout_s: float | None = None,
    examples_per_family: int = 3,
    on_progress: Callable[[int], None] | None = None,
) -> AuditReport:
    settings = {"threshold": threshold, "max_exploit": max_exploit, "max_false_negative": max_false_negative}
    tasks = [_normalise_task(t) for t in tasks]
    prompts = Counter(json.dumps(t.get("prompt", ""), sort_keys=True) for t in tasks)
    duplicates = sum(count - 1 for count in prompts.values() if count > 1)

    canonical_samples, canonical_tasks = [], []
    unusable = []
    for task in tasks:
        completion = canonical_completion(task)
        if completion is None:
            unusable.append({"reference": task.get("reference"), "why": "no canonical correct completion (code/sql tasks need 'solution')"})
            continue
        canonical_samples.append(_sample(task, completion))
        canonical_tasks.append(task)
    canonical = score(canonical_samples, reward, workers=workers, timeout_s=timeout_s) if canonical_samples else []
    usable: list[tuple[dict[str, Any], float]] = []
    for task, outcome in zip(canonical_tasks, canonical):
        value = outcome.components.get("rubric/raw", outcome.score)
        if outcome.status != "ok" or value is None or value <= 0:
            why = outcome.info.get("reason") or outcome.info.get("error") or f"the correct answer scores {value}"
            unusable.append({"reference": task.get("reference"), "why": f"{outcome.status}: {why}"})
        else:
            usable.append((task, value))

    probe_rows: list[tuple[Probe, dict[str, Any], float]] = []
    for task, baseline in usable:
        probe_rows += [(probe, task, baseline) for probe in probes_for(task)]
    outcomes = score([_sample(t, p.completion, p.messages) for p, t, _ in probe_rows], reward, workers=workers, timeout_s=timeout_s,
        on_progress=on_progress) if probe_rows else []

    families: dict[str, FamilyResult] = {}
    for (probe, task, baseline), outcome in zip(probe_rows, outcomes):
        result = families.setdefault(probe.family, FamilyResult(probe.family))
        # A bomb also wins when the reward runs out of time on it: the run stalls even if nothing is credited.
        credited = _credited(outcome, baseline, threshold) or (probe.effect == "hang" and outcome.status == "timeout")
        failed = credited if probe.kind == "exploit" else not credited
        if probe.kind == "exploit":
            result.exploit_probes += 1
            result.exploits += int(credited)
        else:
            result.correct_probes += 1
            result.false_negatives += int(not credited)
        if failed and len(result.examples) < examples_per_family:
            result.examples.append({"family": probe.family, "type": "exploit" if probe.kind == "exploit" else "false negative",
                                    "note": probe.note, "completion": _clip(probe.completion), "reference": task.get("reference"),
                                    "prompt": task.get("prompt", ""), "messages": probe.messages,
                                    "score": outcome.score, "status": outcome.status, "baseline": baseline})

    if getattr(reward, "pairwise", False) and usable:
        families["position_bias"] = _position_bias(reward, usable, workers, timeout_s, examples_per_family)

    seen = {o.score for o in list(canonical) + list(outcomes)}
    constant = len(probe_rows) > 0 and len(seen) == 1
    reasons = []
    for result in families.values():
        if result.exploit_rate > max_exploit:
            reasons.append(f"{result.family}: {result.exploits} of {result.exploit_probes} exploit probes credited")
        if result.false_negative_rate > max_false_negative:
            reasons.append(f"{result.family}: {result.false_negatives} of {result.correct_probes} correct variants not credited")
    if constant:
        reasons.append("the reward gives the same score to every probe: it carries no signal")
    if not usable:
        reasons.append("no task is usable: the reward never credits the plain correct answer")
    verdict = "FAIL" if reasons else "PASS"
    return AuditReport(reward.name, verdict, list(families.values()), len(tasks), len(usable), unusable, duplicates, constant, reasons, settings)


def _position_bias(reward: Reward, usable: list[tuple[dict[str, Any], float]], workers: int | None, timeout_s: float | None,
                   examples: int) -> FamilyResult:
    """For a pairwise judge (a reward with ``pairwise = True``): the plain correct answer against
    a wrong one of the same shape, judged in both orders (the judge swaps them itself and reports
    ``flip``). A pair whose verdict changes with the order is an exploit: position, not content,
    decided it. A pair the judge could not judge counts as one too."""
    from payoff.audit.probes import _answer, _wrong

    result = FamilyResult("position_bias")
    pairs = [(task, canonical_completion(task) or "", _wrong(_answer(task))) for task, _ in usable]
    samples = [{**_sample(task, right), "meta": {**dict(task.get("meta") or {}), "other": wrong}} for task, right, wrong in pairs]
    for (task, right, wrong), outcome in zip(pairs, score(samples, reward, workers=workers, timeout_s=timeout_s)):
        flipped = outcome.status != "ok" or outcome.components.get("flip", 0.0) > 0
        result.exploit_probes += 1
        result.exploits += int(flipped)
        if flipped and len(result.examples) < examples:
            note = (f"P(correct wins) {outcome.components.get('p_win_first_order', float('nan')):.2f} first, "
                    f"{outcome.components.get('p_win_second_order', float('nan')):.2f} second" if outcome.status == "ok"
                    else f"{outcome.status}: {outcome.info.get('error') or outcome.info.get('reason')}")
            result.examples.append({"family": "position_bias", "type": "exploit", "note": note,
                                    "completion": f"{right!r} vs {wrong!r}", "reference": task.get("reference"),
                                    "score": outcome.score, "status": outcome.status, "baseline": 1.0})
    return result


def _clip(text: str, limit: int = 2000) -> str:
    """A probe's text as a report shows it (a size bomb is a megabyte)."""
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


def _normalise_task(task: dict[str, Any]) -> dict[str, Any]:
    """Accept the same reference aliases as `payoff score` (answer, solution, ground_truth)."""
    if "reference" in task:
        return task
    for key in REFERENCE_KEYS[1:]:
        if key in task and not (key == "solution" and task.get("kind") in ("code", "sql")):
            return {**task, "reference": task[key]}
    return task


def _sample(task: dict[str, Any], completion: str, messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The task answered by `completion`; for an episode task, its episode with `completion` as
    the final assistant turn; for an episode probe, the probe's own episode."""
    row = {"prompt": task.get("prompt", ""), "reference": task.get("reference"), "meta": dict(task.get("meta") or {})}
    if messages is not None:
        return {**row, "prompt": "", "messages": messages}  # the prompt is the probe's opening messages
    if isinstance(task.get("messages"), list):
        return {**row, "messages": with_final_text(task["messages"], completion)}
    return {**row, "completion": completion}
