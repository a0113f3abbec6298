"""Rewards from the policy's own distribution (self-certainty, RLPR): their formulas recomputed
by hand from a real (tiny, random) model's logits, the same outcome through the engine as on the
live policy, and a short `payoff rl train` with each (RLPR with its std filter)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from payoff.core import Sample
from payoff.engine import score
from payoff.registry import get_reward
from payoff.rl.loop import train
from payoff.rl.policy_rewards import PolicyScoring, _answer_prefix, rlpr_scores, self_certainty_scores, tokenize_samples
from payoff.select.methods import self_certainty as select_self_certainty
from tests.rl.test_trainer import toy_config
from tests.rl.toy import save_tiny, tiny_model, tokenizer


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("policy-rewards") / "model", seed=3)


def _ids(text: str) -> list[int]:
    return tokenizer()(text, add_special_tokens=False)["input_ids"]


def test_self_certainty_is_the_token_mean_kl_from_uniform() -> None:
    model, tok = tiny_model(1).eval(), tokenizer()
    prompt, completion = _ids("Say something:"), _ids(" hello there friend")
    outcome = self_certainty_scores(model, tok, [prompt], [completion], [Sample(completion="x")])[0]
    with torch.no_grad():
        logits = model(torch.tensor([prompt + completion])).logits[0, len(prompt) - 1:-1].float()
    # the selection method's formula, over log-softmax rows, is the same number
    # (float32 logits: agreement to 1e-5 absolute; the values themselves are ~1e-2 on a random model)
    assert outcome.score == pytest.approx(select_self_certainty(torch.log_softmax(logits, -1)), abs=1e-5)
    vocab = logits.shape[-1]
    by_hand = sum(-math.log(vocab) - float(torch.log_softmax(row, -1).mean()) for row in logits) / len(completion)
    assert outcome.score == pytest.approx(by_hand, abs=1e-5) and outcome.score > 0
    empty = self_certainty_scores(model, tok, [prompt], [[]], [Sample(completion="")])[0]
    assert empty.status == "abstain"


def test_self_certainty_of_a_uniform_policy_is_zero() -> None:
    model = tiny_model(1).eval()
    with torch.no_grad():
        model.lm_head.weight.zero_()  # tied: every logit is 0, every next-token distribution uniform
    outcome = self_certainty_scores(model, tokenizer(), [_ids("Q:")], [_ids(" a b c")], [Sample(completion="a b c")])[0]
    assert outcome.score == pytest.approx(0.0, abs=1e-5)


def test_the_answer_is_replaced_after_the_last_marker() -> None:
    from payoff.rl.policy_rewards import ANSWER_MARKER

    assert _answer_prefix("2+2 is 4. The answer is 5", ANSWER_MARKER, "The answer is ") == ("2+2 is 4. The answer is", "The answer is")
    assert _answer_prefix("x = 3 so \\boxed{4}", ANSWER_MARKER, "The answer is ") == ("x = 3 so \\boxed{", "\\boxed{")
    assert _answer_prefix("I think it is four.", ANSWER_MARKER, "The answer is ") == ("I think it is four.\nThe answer is ", "The answer is ")


def _mean_probability(model, context: list[int], target: list[int]) -> float:
    with torch.no_grad():
        logits = model(torch.tensor([context + target])).logits[0].float()
    logp = torch.log_softmax(logits[len(context) - 1:-1], -1)
    return float(torch.stack([logp[k, t].exp() for k, t in enumerate(target)]).mean())


def test_rlpr_is_the_debiased_mean_probability_of_the_reference() -> None:
    model, tok = tiny_model(2).eval(), tokenizer()
    prompt = _ids("What is 6 times 7?")
    sample = Sample(prompt="What is 6 times 7?", completion="Six sevens make forty-two. The answer is 41", reference="42")
    outcome = rlpr_scores(model, tok, [prompt], [[]], [sample])[0]
    # SmolLM2's tokenizer gives " " and each digit their own tokens: the reference is the last two.
    joined = _ids("Six sevens make forty-two. The answer is 42")
    assert tokenizer().decode(joined[-2:]) == "42"
    r = _mean_probability(model, prompt + joined[:-2], joined[-2:])
    base = _ids("The answer is 42")
    r0 = _mean_probability(model, prompt + base[:-2], base[-2:])
    assert outcome.components["probability"] == pytest.approx(r, rel=1e-4)
    assert outcome.components["no_reasoning"] == pytest.approx(r0, rel=1e-4)
    assert outcome.score == pytest.approx(min(1.0, max(0.0, r - r0)), abs=1e-6)
    raw = rlpr_scores(model, tok, [prompt], [[]], [sample], debias=False)[0]
    assert raw.score == pytest.approx(r, rel=1e-4)
    assert rlpr_scores(model, tok, [prompt], [[]], [Sample(completion="x")])[0].status == "abstain"  # no reference


def test_the_engine_path_and_the_live_policy_agree(tiny_dir: Path) -> None:
    from payoff.models.default import load_policy
    from payoff.models.policy import Policy

    samples = [Sample(prompt="What is 2+3?", completion="Two and three. The answer is 5", reference="5"),
               Sample(prompt="Name a colour.", completion="Blue is one.", reference="red")]
    for name in ("rlpr", "self_certainty"):
        via_engine = score(samples, get_reward(name).configure(model=str(tiny_dir), chat_template=False), workers=0)
        lm, tok = load_policy(str(tiny_dir))
        live = PolicyScoring(get_reward(name), Policy(lm, tok, lora=False, keep_reference=False), chat_template=False).score(samples)
        assert [o.status for o in via_engine] == [o.status for o in live] == ["ok", "ok"]
        assert [o.score for o in via_engine] == pytest.approx([o.score for o in live], rel=1e-5)
    prompts, completions = tokenize_samples(tokenizer(), samples, chat_template=False)
    assert completions[1] == _ids("Blue is one.")


def test_a_failing_sample_is_an_error_and_the_others_are_scored() -> None:
    from payoff.models.policy import Policy

    def scorer(model, tokenizer, prompts, completions, samples, **_):
        if any(s.completion == "boom" for s in samples):
            raise RuntimeError("cannot score boom")
        return self_certainty_scores(model, tokenizer, prompts, completions, samples)

    reward = get_reward("self_certainty").configure()
    reward.policy_scorer = scorer
    samples = [Sample(prompt="Q", completion="fine"), Sample(prompt="Q", completion="boom"), Sample(prompt="Q", completion="ok")]
    outcomes = PolicyScoring(reward, Policy(tiny_model(), tokenizer(), lora=False, keep_reference=False), chat_template=False).score(samples)
    assert [o.status for o in outcomes] == ["ok", "error", "ok"] and "cannot score boom" in outcomes[1].info["error"]


ROWS = [{"prompt": f"Repeat the word {w}.", "reference": w} for w in ("apple", "river", "stone", "cloud") * 8]


@pytest.mark.parametrize("name", ["self_certainty", "rlpr"])
def test_a_short_train_run_on_a_reward_from_the_policy(tmp_path: Path, name: str) -> None:
    seen, results = [], []
    algorithm = {"std_filter": True, "std_filter_momentum": 0.5} if name == "rlpr" else {}
    train(toy_config(tmp_path / name, steps=3, algorithm=algorithm), model=tiny_model(), tokenizer=tokenizer(),
          reward=get_reward(name), train_rows=ROWS, eval_rows=ROWS[:4], on_step=seen.append, on_result=results.append)
    assert len(seen) == 3 and all(math.isfinite(r["loss"]) for r in seen)
    outcomes = [o for r in results for o in r.batch.outcomes]
    assert all(o.status == "ok" for o in outcomes) and len({round(o.score, 6) for o in outcomes}) > 1
    if name == "rlpr":
        assert all("probability" in o.components and "no_reasoning" in o.components for o in outcomes)
        assert seen[-1]["std_threshold"] > 0  # the EMA of the batches' group std moved up from 0
        assert all(r["groups_kept"] <= r["groups_drawn"] for r in seen)
        assert any(r["groups_kept"] < r["groups_drawn"] for r in seen[1:])  # once above 0 it drops the flattest groups
