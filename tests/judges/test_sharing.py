"""Shared prefixes of a local judge's prompts (`payoff.judges.sharing`): the plan on hand-made
token ids (hand-computed heads, groups and savings, and properties over random calls), then the
real SmolLM2-135M-Instruct: GRPO-shaped calls (several completions of each question, repeats
among them) judged with the prefixes computed once give the verdicts of whole-prompt forwards."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.judges import sharing
from payoff.judges.backends import LocalBackend
from payoff.judges.templates import load_template

G = sharing.GROUP_MIN_TOKENS


def test_a_head_groups_and_repeats_by_hand() -> None:
    head = [1, 2, 3]
    q1, q2 = list(range(100, 100 + G + 4)), list(range(200, 200 + G + 9))
    ids = [head + q1 + [7], head + q2 + [8, 9], head + q1 + [5, 6], head + [4], head + q2 + [8, 9], head + q2 + [3]]
    plan = sharing.plan(ids, range(len(ids)))
    assert plan.rows == [0, 1, 2, 3, 5] and plan.same == {4: 1}  # row 4 repeats row 1: judged once
    assert plan.head == 3
    assert sorted(length for _, length in plan.groups) == [3 + len(q1), 3 + len(q2)]
    assert plan.shared(3) == 3  # alone: the head only
    assert plan.shared(0) == plan.shared(2) == 3 + len(q1) and plan.shared(1) == plan.shared(5) == 3 + len(q2)


def test_a_short_group_is_not_formed_and_every_prompt_keeps_a_token() -> None:
    ids = [[1, 2] + [9] * (G - 1) + [3], [1, 2] + [9] * (G - 1) + [4], [1, 2, 5]]
    assert sharing.plan(ids, range(3)).groups == []  # G - 1 tokens past the head: not worth a forward
    prefix_of_other = [[1] * 40, [1] * 40 + [2]]
    plan = sharing.plan(prefix_of_other, [0, 1])
    assert plan.head == 39 and all(plan.shared(r) < len(prefix_of_other[r]) for r in plan.rows)


def test_the_best_cut_keeps_the_larger_saving() -> None:
    # a and b share 2G past the head, c shares only G with them: a group of three saves 2 * G,
    # the pair alone 2G (and c nothing): equal, so the whole stays; with 3G the pair wins
    for pair, expect in ((2 * G, 3), (3 * G, 2)):
        common, rest = [7] * G, [8] * (pair - G)
        ids = [[0] + common + rest + [1], [0] + common + rest + [2], [0] + common + [5] + [6] * pair, [3]]
        plan = sharing.plan(ids, range(4))
        assert plan.head == 0
        assert sum(1 for r in plan.rows if r in plan.group_of) == expect


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=60), min_size=1, max_size=12))
def test_plan_properties(ids: list[list[int]]) -> None:
    kept = list(range(len(ids)))
    plan = sharing.plan(ids, kept)
    assert sorted(plan.rows + list(plan.same)) == kept
    assert all(ids[i] == ids[j] for i, j in plan.same.items()) and len({tuple(ids[r]) for r in plan.rows}) == len(plan.rows)
    for r in plan.rows:
        assert plan.head <= plan.shared(r) < len(ids[r])  # every distinct prompt keeps one token of its own
        assert ids[r][:plan.head] == ids[plan.rows[0]][:plan.head]
    for g, (member, length) in enumerate(plan.groups):
        mine = [r for r in plan.rows if plan.group_of.get(r) == g]
        assert len(mine) >= 2 and length - plan.head >= G
        assert all(ids[r][:length] == ids[member][:length] for r in mine)


def _grpo_prompts() -> list[str]:
    template = load_template("reference")
    prompts = []
    for a in (3, 11, 24):
        for k in range(5):
            response = f"The sum is {3 * a + (k % 2)}." + " I checked it twice." * (k % 3)
            prompts.append(template.render(prompt=f"What is {a} + {2 * a}? Show the sum.", reference=str(3 * a), response=response))
    return prompts + [prompts[1], load_template("reference").render(prompt="Name a prime.", reference="7", response="7")]


def test_grpo_shaped_calls_give_the_verdicts_of_whole_prompts() -> None:
    prompts = _grpo_prompts()  # three questions x five completions, a repeat and a lone prompt
    plain = LocalBackend(batch_size=1, share_prefix=False).verdicts(prompts, ["Yes", "No"])
    for rows in (4, 8, 64):
        shared = LocalBackend(batch_size=rows, share_prefix=True).verdicts(prompts, ["Yes", "No"])
        for a, b in zip(shared, plain):
            assert a["Yes"] == pytest.approx(b["Yes"], abs=1e-4) and a["_mass"] == pytest.approx(b["_mass"], abs=1e-4)
        head = min(v["_shared"] for v in shared)
        assert head >= LocalBackend.SHARE_MIN_TOKENS  # the template's head
        assert all(v["_shared"] >= head + G for v in shared[:16])  # each question's group shares its question and reference
        assert shared[-1]["_shared"] == head and shared[15] == shared[1]


def test_a_call_without_a_common_head_still_shares_its_groups() -> None:
    backend = LocalBackend()
    model, tokenizer = backend._load()
    texts = [f"{start} Is the number below even? Answer with one word, Yes or No, and nothing else at all. The number is {n}."
             for start in ("Question:", "Task:") for n in (4, 7, 10)]
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    plan = sharing.plan(ids, range(len(ids)))
    assert plan.head == 0 and len(plan.groups) == 2
    import torch

    with torch.no_grad():
        groups = sharing.group_caches(model, ids, plan, None, 0, 4)
        shared = sharing.last_logits(model, ids, plan.rows, plan, 0, None, groups)
        whole = [model(input_ids=torch.tensor([row])).logits[0, -1] for row in ids]
    for a, b in zip(shared, whole):
        assert torch.allclose(torch.softmax(a, -1), torch.softmax(b, -1), atol=1e-4)
