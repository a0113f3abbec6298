"""The cache key is the reward's whole identity: helper modules, wrapper rates, rubric terms and
gates all change it; an edit to a module the reward never uses does not. A cache that cannot
write is logged and skipped."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from payoff.compose import Rubric, Term
from payoff.compose.shapers import HapoShaper
from payoff.compose.wrappers import noisy_corrected, step_shaped
from payoff.engine.cache import OutcomeCache
from payoff.registry import get_reward


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A user's reward package on disk: rewards.py uses helpers.py; unrelated.py is not used."""
    root = tmp_path / "cachekeypkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "helpers.py").write_text("def normalise(text):\n    return text.strip().lower()\n")
    (root / "unrelated.py").write_text("VALUE = 1\n")
    (root / "rewards.py").write_text(textwrap.dedent("""
        from payoff import reward
        from cachekeypkg.helpers import normalise

        @reward(name="cachekey_match")
        def match(sample):
            return float(normalise(sample.completion) == normalise(str(sample.reference)))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("cachekeypkg")]:
        del sys.modules[name]
    module = importlib.import_module("cachekeypkg.rewards")
    yield root, module.match
    for name in [m for m in sys.modules if m.startswith("cachekeypkg")]:
        del sys.modules[name]


def test_editing_a_helper_module_changes_the_key_and_an_unrelated_edit_does_not(package) -> None:
    root, reward = package
    before = reward.fingerprint()
    (root / "unrelated.py").write_text("VALUE = 2  # edited\n")
    assert reward.fingerprint() == before
    (root / "helpers.py").write_text("def normalise(text):\n    return text.strip()\n")  # no longer lower-cases
    assert reward.fingerprint() != before


def test_wrapper_rates_rubric_terms_gates_and_shapers_change_the_key() -> None:
    math, fmt = get_reward("math"), get_reward("think_format")
    assert noisy_corrected(math, 0.1, 0.2).fingerprint() != noisy_corrected(math, 0.1, 0.3).fingerprint()
    assert step_shaped(math, "clip", eta=0.0).fingerprint() != step_shaped(math, "clip", eta=0.5).fingerprint()
    base = Rubric([Term(math), Term(fmt, 0.2)])
    variants = [
        Rubric([Term(math), Term(fmt, 0.3)]),
        Rubric([Term(math), Term(fmt, 0.2, gate="math >= 1")]),
        Rubric([Term(math), Term(fmt, 0.2, gate="math >= 1", gate_value=-1.0)]),
        Rubric([Term(math), Term(fmt, 0.2)], normalize="group"),
        Rubric([Term(math), Term(fmt, 0.2)], shapers=[HapoShaper(weight=0.5)]),
        Rubric([Term(math), Term(get_reward("cosine_length").configure(max_length=100), 0.2, label="think_format")]),
    ]
    keys = {base.fingerprint()} | {v.fingerprint() for v in variants}
    assert len(keys) == len(variants) + 1
    assert Rubric([Term(math), Term(fmt, 0.2)]).fingerprint() == base.fingerprint()  # deterministic
    assert get_reward("math").fingerprint() == math.fingerprint()
    assert math.configure(name="math").fingerprint() == math.fingerprint()
    assert get_reward("cosine_length").configure(max_length=100).fingerprint() != get_reward("cosine_length").fingerprint()


def test_a_rubric_counts_a_term_without_a_timeout_at_the_default() -> None:
    from payoff.core import reward as make_reward
    from payoff.engine.pool import DEFAULT_TIMEOUT_S

    untimed = make_reward(name="untimed")(lambda s: 1.0)
    timed = make_reward(name="timed", timeout_s=2.0)(lambda s: 1.0)
    assert Rubric([Term(untimed), Term(timed)]).timeout_s == DEFAULT_TIMEOUT_S + 2.0


def test_a_cache_write_that_fails_is_logged_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from payoff.core import Outcome, Sample

    cache = OutcomeCache(tmp_path / "cache", "fp")
    sample = Sample(completion="x")
    unpicklable = Outcome.ok(1.0, handle=lambda: None)  # a lambda in info cannot be pickled
    with caplog.at_level("WARNING", logger="payoff.cache"):
        cache.put([sample], [unpicklable])
    assert cache.write_failures == 1 and "could not store" in caplog.text
    cache.put([sample], [Outcome.ok(1.0)])  # the next write works: one failure costs one entry
    assert cache.get([sample])[0].score == 1.0
    cache.close()
