"""The TRL, verl and OpenRLHF adapters, against the real libraries where they exist here."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch

from payoff.integrations.openrlhf import protocol_response, protocol_samples, reward_func, split_response
from payoff.integrations.trl import trl_reward
from payoff.integrations.verl import compute_score, make_compute_score
from tests.rl.toy import tiny_model, tokenizer, vowel_share


def test_trl_reward_returns_scores_and_none_for_abstain() -> None:
    func = trl_reward("math", workers=1)
    try:
        values = func(prompts=["p"] * 3, completions=["\\boxed{4}", "5", [{"role": "assistant", "content": "4"}]],
                      answer=["4", "\\boxed{", "4"])
    finally:
        func.engine.close()
    assert values == [1.0, None, 1.0]  # the unparseable reference abstains: None, so TRL ignores it
    assert func.__name__ == "payoff_math"


def test_trl_grpo_trainer_takes_a_step_with_the_adapter(tmp_path: Path) -> None:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    rows = [{"prompt": f"What is {i} + 1?", "reference": str(i + 1)} for i in range(8)]
    func = trl_reward("math", workers=1)
    # A random model never gets the sums right, so a graded toy reward gives the step a gradient.
    graded = trl_reward(vowel_share, workers=1)
    config = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, max_steps=1, per_device_train_batch_size=4,
                        num_generations=4, max_completion_length=6, report_to="none", save_strategy="no", logging_steps=1,
                        disable_tqdm=True, seed=0)
    tok = tokenizer()
    model = tiny_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = GRPOTrainer(model=model, reward_funcs=[func, graded], args=config, train_dataset=Dataset.from_list(rows), processing_class=tok)
    trainer.train()
    func.engine.close()
    graded.engine.close()
    assert trainer.state.global_step == 1
    assert len(func.last_outcomes) == 4 and all(o.status == "ok" for o in func.last_outcomes)
    logged = trainer.state.log_history[0]
    assert any(key.startswith("rewards/payoff_math") for key in logged), logged
    assert any(key.startswith("rewards/payoff_toy_vowels") for key in logged), logged
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())  # the step changed the weights


def test_verl_compute_score_signature_and_values(monkeypatch) -> None:
    parameters = list(inspect.signature(compute_score).parameters)
    assert parameters[:4] == ["data_source", "solution_str", "ground_truth", "extra_info"]
    scorer = make_compute_score("math")
    try:
        assert scorer("openai/gsm8k", "so #### 72", "72") == 1.0
        assert scorer("openai/gsm8k", "so #### 71", "72", extra_info={"split": "test"}) == 0.0
        assert scorer("openai/gsm8k", "72", "\\boxed{") == 0.0  # abstain: verl needs a number
    finally:
        scorer.engine.close()
    monkeypatch.setenv("PAYOFF_REWARD", "exact_match")
    monkeypatch.setattr("payoff.integrations.verl._scorers", {})
    assert compute_score("x", "Paris", "paris")["score"] == 1.0  # verl's dict result: score, status, components


def test_openrlhf_protocol_and_reward_function_file() -> None:
    assert split_response("Q: hi A: yes", "Q: hi A:") == " yes"
    assert split_response("other", "Q:") is None  # cannot be told apart from its prompt: never graded whole
    assert split_response("just a response", None) == "just a response"
    samples = protocol_samples(["P1 \\boxed{3}", "P2 4"], ["P1", "P2"], ["3", "5"])
    assert [s.completion for s in samples] == [" \\boxed{3}", " 4"]
    with pytest.raises(ValueError, match="'prompts' has 1 items"):
        protocol_samples(["a", "b"], ["a"], None)
    result = reward_func(["P1 \\boxed{3}", "P2 4"], ["P1", "P2"], ["3", "5"])
    assert torch.equal(result["rewards"], torch.tensor([1.0, 0.0]))
    assert set(result["extra_logs"]) == {"payoff_abstain", "payoff_error", "payoff_timeout"}
    from payoff.core import Outcome

    assert protocol_response([Outcome.timeout(1.0)])["rewards"] == [0.0]


def test_trl_generations_of_one_prompt_form_one_group() -> None:
    from payoff.integrations.trl import trl_reward

    func = trl_reward("majority_vote", workers=1)
    try:
        prompts = ["p1"] * 3 + ["p2"] * 3
        completions = ["The answer is 4.", "The answer is 4.", "The answer is 5.", "The answer is 7.", "The answer is 8.", "The answer is 8."]
        scores = func(prompts=prompts, completions=completions)
        assert scores == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]  # majorities 4 and 8, voted within each prompt
    finally:
        func.engine.close()


def test_adapters_without_groups_refuse_group_dependent_rewards() -> None:
    from payoff.compose import Rubric, Term
    from payoff.integrations.groups import group_dependence
    from payoff.integrations.verl import make_compute_score
    from payoff.registry import get_reward

    with pytest.raises(ValueError, match="no prompt groups.*majority_vote is a group reward"):
        make_compute_score("majority_vote")
    with pytest.raises(ValueError, match="normalises per prompt group"):
        make_compute_score(Rubric([Term(get_reward("math"))], normalize="group"))
    assert group_dependence(Rubric([Term(get_reward("math"))], normalize="batch")) is None
    scorer = make_compute_score("math")  # a per-sample reward is fine
    try:
        assert scorer("gsm8k", "The answer is 4.", "4") == 1.0
    finally:
        scorer.engine.close()
