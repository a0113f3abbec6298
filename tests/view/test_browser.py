"""The page in a real headless Chromium (tests/view/browser.py), over a real `payoff rl train` run
folder and a `payoff score` file of episodes, clicked as a person clicks: the curves render, a
click on a step lists that step's samples, a filter narrows them, an episode shows its tool
calls, a group shows its members' advantages, the audit matrix clicks through to the probe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.view.browser import Browser, chromium
from tests.view.serving import viewing

pytestmark = pytest.mark.skipif(chromium() is None, reason="no chromium on PATH (apt-get install chromium)")

READY = "document.body.dataset.state === 'ready' && document.body.dataset.rendered === location.hash"


@pytest.fixture(scope="module")
def browser():
    with Browser() as opened:
        yield opened


def rows_shown(browser: Browser) -> list[dict]:
    return browser.evaluate("[...document.querySelectorAll('#samples-table tbody tr')].map(r => "
                            "({index: +r.dataset.index, step: r.dataset.step, status: r.dataset.status}))")


def test_curves_click_a_step_then_filter(browser: Browser, made: dict[str, Path]) -> None:
    samples = [json.loads(line) for line in (made["run"] / "samples.jsonl").read_text().splitlines()]
    with viewing(made["run"]) as url:
        browser.goto(url)
        assert browser.evaluate("location.hash") == "" and browser.evaluate("document.body.dataset.view") == "curves"
        panels = browser.evaluate("[...document.querySelectorAll('.panel')].map(p => p.dataset.panel)")
        assert {"reward", "accuracy", "KL", "length", "monitor"} <= set(panels)
        # uPlot drew: a canvas per panel, with non-blank pixels
        assert browser.evaluate("[...document.querySelectorAll('.panel canvas')].every(c => c.width > 100 && "
                                "c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some(v => v !== 0))")
        legend = browser.evaluate("[...document.querySelector('.panel[data-panel=reward]').querySelectorAll('.u-legend .u-label')]"
                                  ".map(e => e.textContent)")
        assert {"reward_mean", "reward/vowels", "reward/letters"} <= set(legend)

        # a real mouse click on the reward curve at step 3
        x, y = browser.evaluate("(() => { const p = PV.plots[0]; const r = p.over.getBoundingClientRect(); "
                                "return [r.left + p.valToPos(3, 'x'), r.top + r.height / 2]; })()")
        browser.click_at(x, y)
        browser.wait_for(f"location.hash.startsWith('#/samples') && {READY} && document.querySelector('#samples-table')")
        shown = rows_shown(browser)
        assert [r["index"] for r in shown] == [i for i, s in enumerate(samples) if s["step"] == 3] and len(shown) == 16
        assert browser.evaluate("document.getElementById('f-step').value") == "3"

        # narrow to this step's errors with the status filter
        browser.evaluate("document.getElementById('f-status').value = 'error'")
        browser.click("#f-apply")
        browser.wait_for(f"location.hash.includes('status=error') && {READY}")
        narrowed = rows_shown(browser)
        expected = [i for i, s in enumerate(samples) if s["step"] == 3 and s["status"] == "error"]
        assert [r["index"] for r in narrowed] == expected and 0 < len(narrowed) < len(shown)
        assert browser.evaluate("document.getElementById('count').textContent").startswith(f"{len(expected)} rows")

        # a row opens the sample; its group link opens the members side by side with advantages
        browser.click(f"#samples-table tbody tr[data-index='{expected[0]}']")
        browser.wait_for(f"location.hash === '#/sample/{expected[0]}' && {READY}")
        assert browser.evaluate("document.querySelector('.completion').textContent") == samples[expected[0]]["completion"]
        browser.click(".group-link")
        browser.wait_for(f"location.hash.startsWith('#/group') && {READY}")
        members = browser.evaluate("[...document.querySelectorAll('.member')]"
                                   ".map(m => [+m.dataset.index, m.querySelector('.advantage').textContent])")
        group = samples[expected[0]]["group"]
        assert [m[0] for m in members] == [i for i, s in enumerate(samples) if s["group"] == group]
        assert any(text.startswith(("+", "-")) for _, text in members)  # the members that scored carry an advantage


def test_an_episode_shows_its_tool_calls(browser: Browser, made: dict[str, Path]) -> None:
    with viewing(made["episodes"]) as url:
        browser.goto(url + "#/samples")
        browser.click("#f-episodes")
        browser.click("#f-apply")
        browser.wait_for(f"location.hash.includes('episodes=1') && {READY}")
        browser.click("#samples-table tbody tr[data-index='1']")
        browser.wait_for(f"location.hash === '#/sample/1' && {READY}")
        assert browser.evaluate("document.querySelector('.tool-call .tool-name').textContent") == "calculator"
        assert json.loads(browser.evaluate("document.querySelector('.tool-call .tool-args').textContent")) == {"expression": "17 + 23"}
        assert browser.evaluate("document.querySelector('.msg.tool .role').textContent").startswith("tool result · calculator")
        assert browser.evaluate("document.querySelector('.msg.tool .tool-result').textContent") == "40"
        roles = browser.evaluate("[...document.querySelectorAll('.episode .msg')].map(m => m.className.replace('msg ', ''))")
        assert roles == ["system", "user", "assistant", "tool", "assistant"]
        assert "tool_calls" in browser.evaluate("document.querySelector('table.components').textContent")
        browser.goto(url + "#/sample/0")
        assert "feedback" in browser.evaluate("[...document.querySelectorAll('.episode .msg')].map(m => m.className).join(' ')")


def test_audit_matrix_clicks_through_and_eval_lists_wrong_items(browser: Browser, made: dict[str, Path]) -> None:
    with viewing(made["audit"]) as url:
        browser.goto(url + "#/audit")
        browser.click("td.cell[data-hack='long_padding'][data-reward='length_share']")
        browser.wait_for("!!document.querySelector('.cell-detail .probe')")
        assert browser.evaluate("document.querySelector('.cell-detail .probe-completion').textContent") == "5 " * 40
        browser.click("tr[data-family='answer_spam']")
        browser.wait_for("!!document.querySelector('.probe-detail .probe')")
    with viewing(made["evals"]) as url:
        browser.goto(url + "#/eval")
        browser.click("td[data-report='0'][data-subset='math']")
        browser.wait_for(f"location.hash.startsWith('#/eval/items') && {READY}")
        assert browser.evaluate("document.querySelectorAll('.eval-item').length") == 1  # length prefers the long wrong answer once in math


def test_a_trainer_episode_row(browser: Browser, tmp_path: Path) -> None:
    """The shape `payoff rl train` logs for an episode (turn_rewards and error at the top of the row)."""
    from tests.view.fixtures import episode

    row = {"step": 2, **episode("What is 17 * 23?", "17 * 23", "391", "391"), "group": "2-0", "reward": None, "status": "error",
           "turns": 2, "tool_calls": 1, "tool_errors": 0, "turn_rewards": [0.25, 0.75], "error": "the judge timed out on turn 2"}
    run = tmp_path / "run"
    run.mkdir()
    (run / "samples.jsonl").write_text(json.dumps(row) + "\n")
    with viewing(run) as url:
        browser.goto(url + "#/sample/0")
        labels = browser.evaluate("[...document.querySelectorAll('.msg.assistant > .role')].map(e => e.textContent)")
        assert labels == ["assistant · turn 1 · turn reward 0.250", "assistant · turn 2 · turn reward 0.750"]
        assert browser.evaluate("document.querySelector('.error-text').textContent") == "the judge timed out on turn 2"
        assert "tool_errors" in browser.evaluate("document.querySelector('.sample').textContent")
