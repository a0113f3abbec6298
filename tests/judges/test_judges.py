"""Judges on a real local model (the embedded SmolLM2-135M-Instruct): the master-key guard, strict
verdict parsing, batched verdicts equal to one-at-a-time, every judge kind's outcome shape, and
the master-key false-positive rates unguarded vs guarded."""

from __future__ import annotations

import pytest

from payoff.compose import Rubric, Term, fallback
from payoff.engine import score
from payoff.judges.backends import LocalBackend
from payoff.judges.guard import content_free
from payoff.judges.kinds import conservative
from payoff.judges.templates import VerdictError, load_template, parse_choice, parse_score, parse_yes_no
from payoff.registry import get_reward

MASTER_KEYS = [" ", ".", ",", ":", "Thought process:", "Let's solve this problem step by step.", "Solution", "解", "かいせつ",
               "**Solution:**", "Let me think step by step...", "Answer:", "思考过程：", "Okay, let's solve this."]


@pytest.mark.parametrize("key", MASTER_KEYS)
def test_the_guard_rejects_master_keys(key: str) -> None:
    assert content_free(key) is not None


@pytest.mark.parametrize("answer", ["4", "Paris", "x = 2", "Yes", "The answer is 12.", "Let's see: 3 + 4 = 7.", "解：x=3", "Blue."])
def test_the_guard_lets_real_answers_through(answer: str) -> None:
    assert content_free(answer) is None


def test_verdicts_are_parsed_strictly() -> None:
    assert parse_yes_no(" Yes.") is True and parse_yes_no("no") is False
    assert parse_score("Score: 4", 5) == 4 and parse_score("3/5", 5) == 3
    assert parse_choice("B") == "B" and parse_choice("Response A") == "A"
    for bad, parser in (("Yes and no", parse_yes_no), ("Score: 9", lambda t: parse_score(t, 5)), ("A or B", parse_choice), ("", parse_yes_no)):
        with pytest.raises(VerdictError):
            parser(bad)


def test_templates_are_versioned_files(tmp_path) -> None:
    assert load_template("binary").version == "1"
    custom = tmp_path / "mine.txt"
    custom.write_text("version: 7\nIs {response} polite? Yes or No.\n")
    assert load_template(str(custom)).version == "7"
    custom.write_text("no version line\n")
    with pytest.raises(ValueError, match="version"):
        load_template(str(custom))


def test_batched_verdicts_equal_one_at_a_time() -> None:
    backend = LocalBackend(batch_size=4)
    prompts = [f"Is {n} an even number? Reply with exactly one word: Yes or No." for n in (2, 7, 10, 13, 20)]
    together = backend.verdicts(prompts, ["Yes", "No"])
    alone = [backend.verdicts([p], ["Yes", "No"])[0] for p in prompts]
    for a, b in zip(together, alone):
        assert a["Yes"] == pytest.approx(b["Yes"], abs=1e-4) and a["Yes"] + a["No"] == pytest.approx(1.0)


def test_a_shared_template_prefix_gives_the_verdicts_of_full_prompts() -> None:
    # the reference template's instructions are the shared prefix; the question and the response
    # differ in length from prompt to prompt, so the batches pad between prefix and rest
    template = load_template("reference")
    prompts = [template.render(prompt=f"What is {a} + {2 * a}?", reference=str(3 * a),
                               response=f"The sum is {3 * a + a % 2}." + " I checked it twice." * (a % 4)) for a in range(1, 8)]
    shared = LocalBackend(batch_size=3, share_prefix=True).verdicts(prompts, ["Yes", "No"])
    plain = LocalBackend(batch_size=1, share_prefix=False).verdicts(prompts, ["Yes", "No"])
    assert len(shared) == len(plain) == len(prompts)
    for a, b in zip(shared, plain):
        assert a["Yes"] == pytest.approx(b["Yes"], abs=1e-4) and a["_mass"] == pytest.approx(b["_mass"], abs=1e-4)
    assert LocalBackend().verdicts([], ["Yes", "No"]) == []


def test_a_bf16_judge_gives_the_verdicts_of_fp32_within_bfloat16_rounding() -> None:
    template = load_template("reference")
    prompts = [template.render(prompt=f"What is {a} + {a}?", reference=str(2 * a), response=f"It is {2 * a + a % 2}.") for a in range(1, 7)]
    exact = LocalBackend(share_prefix=True).verdicts(prompts, ["Yes", "No"])
    rounded = LocalBackend(share_prefix=True, precision="bf16").verdicts(prompts, ["Yes", "No"])
    gaps = [abs(a["Yes"] - b["Yes"]) for a, b in zip(exact, rounded)]
    assert max(gaps) < 0.05 and max(gaps) > 0  # close, and bfloat16 did run
    with pytest.raises(ValueError, match="precision"):
        LocalBackend(precision="fp16")
    # a judge's own parameter, and its outcomes say which precision judged them
    sample = {"prompt": "What is 2 + 2?", "completion": "It is 4.", "reference": "4"}
    outcome = score([sample], get_reward("judge_reference").configure(precision="bf16"), workers=0)[0]
    assert outcome.status == "ok" and outcome.info["judge"] == "local:smollm2-135m-instruct:bf16"


def test_a_prompt_over_the_token_cap_is_an_error_not_a_forward_pass() -> None:
    short, long = "Is 4 even? Reply Yes or No.", "Is this even? " + "9" * 2_000
    capped = LocalBackend(max_prompt_tokens=200).verdicts([long, short], ["Yes", "No"])
    assert isinstance(capped[0], Exception) and "over the local judge's cap of 200" in str(capped[0])
    assert capped[1]["Yes"] == pytest.approx(LocalBackend().verdicts([short], ["Yes", "No"])[0]["Yes"], abs=1e-4)
    assert isinstance(LocalBackend(max_prompt_tokens=200, share_prefix=True).verdicts([long, long], ["Yes"])[1], Exception)
    # the default cap is the model's context (8192 for SmolLM2): the audit's 300,000-digit answer
    # becomes that sample's error outcome, measured on the tokenizer, in well under a forward pass
    bomb = {"prompt": "What is 6 * 7?", "completion": "9" * 300_000, "reference": "42"}
    outcome = score([bomb], get_reward("judge_binary"), workers=0)[0]
    assert outcome.status == "error" and "cap of 8192" in outcome.info["error"], outcome


def test_master_key_false_positives_unguarded_and_guarded() -> None:
    tasks = [("What is 2 + 2?", "4"), ("What is the capital of France?", "Paris")]
    samples = [{"prompt": q, "completion": key, "reference": ref} for q, ref in tasks for key in MASTER_KEYS[:9]]
    guarded = score(samples, get_reward("judge_reference"), workers=0)
    unguarded = score(samples, get_reward("judge_reference").configure(guard=False), workers=0)
    assert all(o.status == "ok" for o in guarded + unguarded)
    assert sum(o.score >= 0.5 for o in guarded) == 0 and all(o.components["guard_rejected"] == 1.0 for o in guarded)
    assert sum(o.score >= 0.5 for o in unguarded) > 0  # the small judge is fooled without the guard


def test_every_kind_gives_typed_outcomes_in_a_rubric() -> None:
    sample = {"prompt": "Name a primary colour.", "completion": "Red.", "reference": "red", "meta": {"other": "I like turtles.",
                                                                                                    "checklist": ["names a colour", "is short"]}}
    for name in ("judge_pointwise", "judge_binary", "judge_reference", "judge_principle", "judge_checklist", "judge_pairwise"):
        outcome = score([sample], get_reward(name), workers=0)[0]
        assert outcome.status == "ok" and 0.0 <= outcome.score <= 1.0, (name, outcome)
    pairwise = score([sample], get_reward("judge_pairwise"), workers=0)[0]
    assert {"p_win_first_order", "p_win_second_order", "flip"} <= set(pairwise.components)
    assert score([{**sample, "meta": {}}], get_reward("judge_checklist"), workers=0)[0].status == "abstain"
    group = [{"prompt": "Name a colour.", "completion": c, "group": "g"} for c in ("Red.", "Blue.", ":")]
    brpo = score(group, get_reward("judge_brpo"), workers=0)
    assert sorted(o.components.get("is_reference", 0.0) for o in brpo) == [0.0, 0.0, 1.0]
    # behind the math verifier: the judge is asked only where the verifier abstains
    behind_math = Rubric([Term(fallback(get_reward("math"), get_reward("judge_reference")), 1.0)])
    rows = [{"prompt": "What is 2+2?", "completion": "4", "reference": "4"},
            {"prompt": "Name the colour of the sky.", "completion": "Blue", "reference": None}]  # no reference: math abstains
    verified, judged = score(rows, behind_math, workers=0)
    assert verified.score == 1.0 and verified.components["math|judge_reference/fallback"] == 0.0
    assert judged.status == "ok" and judged.components["math|judge_reference/fallback"] == 1.0
    assert judged.info["terms"]["math|judge_reference"]["primary"]["status"] == "abstain"


def test_the_conservative_rule() -> None:
    assert conservative(0.9, 0.8) == 1.0 and conservative(0.1, 0.2) == 0.0
    assert conservative(0.9, 0.2) == 0.5 and conservative(0.3, 0.7) == 0.5  # orders disagree: a tie


def test_the_audit_probes_a_pairwise_judge_for_position_bias() -> None:
    from payoff.audit.runner import _position_bias, audit
    from payoff.core import Outcome, batched_reward

    tasks = [{"prompt": "What is 3 + 4?", "reference": "7"}, {"prompt": "What is 10 - 6?", "reference": "4"}]
    # The real local judge (SmolLM2-135M) picks by position: its verdict flips when the order does.
    # (The probe alone here; the whole audit of a local judge runs every family and takes minutes.)
    family = _position_bias(get_reward("judge_pairwise"), [(t, 1.0) for t in tasks], workers=0, timeout_s=None, examples=3)
    assert family.exploit_probes == 2 and family.exploits >= 1
    assert "P(correct wins)" in family.examples[0]["note"]

    # Test doubles, because no real judge here is free of position bias: pairwise rewards that
    # compare by content (the reference appears in the answer), one reporting both orders alike,
    # one whose second order always disagrees.
    def make(flips: bool):
        @batched_reward(name="content_pairwise", batch_size=8, register=False)
        def content_pairwise(samples):
            out = []
            for s in samples:
                win = 1.0 if str(s.reference) in s.completion else 0.0
                second = 1.0 - win if flips else win
                out.append(Outcome.ok(win, {"p_win_first_order": win, "p_win_second_order": second, "flip": float(win != second)}))
            return out

        content_pairwise.pairwise = True
        return content_pairwise

    fair = audit(make(False), tasks, workers=0)
    assert {f.family: f for f in fair.families}["position_bias"].exploits == 0
    assert not any(r.startswith("position_bias") for r in fair.reasons)
    biased = audit(make(True), tasks, workers=0)
    assert {f.family: f for f in biased.families}["position_bias"].exploits == 2
    assert biased.verdict == "FAIL" and any(r.startswith("position_bias") for r in biased.reasons)
    plain = audit(get_reward("math"), tasks, workers=0)
    assert "position_bias" not in {f.family for f in plain.families}  # only pairwise judges get the probe
