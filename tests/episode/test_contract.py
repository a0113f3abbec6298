"""The episode in the contract: `Sample.from_dict` (the one door), the engine, pickling and the
cache key, each over the same table of valid and malformed trajectories."""

from __future__ import annotations

import pickle

import pytest

import payoff
from payoff.core import Sample, SampleError
from payoff.engine.cache import OutcomeCache
from payoff.episode import check_messages, final_text, tool_calls, tool_result, turn_texts
from tests.episode.cases import CALC, MALFORMED, VALID, say


@pytest.mark.parametrize("name", list(VALID))
def test_a_valid_episode_reads_as_its_final_answer(name: str) -> None:
    messages, final, opened = VALID[name]
    sample = Sample.from_dict({"messages": messages, "answer": "43"})
    assert sample.completion == final
    assert sample.prompt == messages[:opened]
    assert sample.reference == "43" and sample.messages == messages
    assert Sample.from_dict(sample.to_dict()) == sample  # round trip
    assert pickle.loads(pickle.dumps(sample)) == sample
    assert Sample.from_dict({"messages": messages, "completion": final}) == Sample(messages=messages)  # agreeing: fine


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_episode_is_a_sample_error_naming_the_message(name: str) -> None:
    messages, phrase = MALFORMED[name]
    with pytest.raises(SampleError) as raised:
        Sample.from_dict({"messages": messages, "completion": "x"})
    assert phrase in str(raised.value)
    with pytest.raises(SampleError):
        Sample(messages=messages)  # the direct constructor checks too


@pytest.mark.parametrize(("completion", "phrase"), [("The answer is 42", "is not the final assistant text"),
                                                    ("", "is not the final assistant text")])
def test_a_completion_that_disagrees_with_the_messages_is_an_error(completion: str, phrase: str) -> None:
    with pytest.raises(SampleError, match=phrase):
        Sample.from_dict({"messages": CALC, "completion": completion})


def test_an_explicit_prompt_is_kept() -> None:
    assert Sample.from_dict({"messages": CALC, "prompt": "p"}).prompt == "p"


def test_a_plain_samples_dict_and_cache_key_are_unchanged_and_an_episodes_include_the_messages() -> None:
    plain = Sample("4", "2+2?")
    assert "messages" not in plain.to_dict()
    cache = OutcomeCache.__new__(OutcomeCache)
    cache.fingerprint = "f"
    other = [*CALC[:-1], say("assistant", "The answer is \\boxed{43}"), say("user", "thanks"), say("assistant", "The answer is \\boxed{43}")]
    one, two = Sample(messages=CALC), Sample(messages=other)
    assert one.completion == two.completion and one.prompt == two.prompt
    assert cache.key([one]) != cache.key([two])  # same final answer, different episode: different key


def test_the_readers() -> None:
    check_messages(CALC)
    assert final_text(CALC) == "The answer is \\boxed{43}"
    assert turn_texts(CALC) == ["", "Adding one.", "The answer is \\boxed{43}"]
    found = tool_calls(CALC)
    assert [(c.id, c.name, c.arguments, c.turn, c.index) for c in found] == [
        ("c1", "calc", {"expression": "6*7"}, 0, 2), ("c2", "calc", {"expression": "42+1"}, 1, 4), ("c3", "note", {"text": "done"}, 1, 4)]
    assert tool_result(CALC, "c2") == "43" and tool_result(CALC, "nope") is None


def test_the_engine_scores_episodes_and_reports_malformed_ones_per_sample() -> None:
    rows = [{"messages": CALC, "answer": "43"}, {"messages": MALFORMED["arguments not JSON"][0]},
            {"completion": "\\boxed{43}", "answer": "43"}, {"messages": CALC, "answer": "42"}]
    outcomes = payoff.score(rows, "math", workers=0)
    assert [o.status for o in outcomes] == ["ok", "error", "ok", "ok"]
    assert [o.score for o in outcomes] == [1.0, None, 1.0, 0.0]
    assert "messages[2].tool_calls[0]: function.arguments is not JSON" in outcomes[1].info["error"]
