"""The screenshots in docs/view/: ``python -m tests.view.screenshots FIXTURES OUT`` after
``python -m tests.view.fixtures FIXTURES``. Each view as a person reaches it, by clicking."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.view.browser import Browser
from tests.view.serving import viewing


def take(fixtures: Path, out: Path) -> list[Path]:
    shots = []
    with Browser(width=1280, height=860) as browser:
        with viewing(fixtures / "run") as url:
            browser.goto(url + "#/curves")
            shots.append(browser.screenshot(out / "curves.png"))
            browser.click_at(*browser.evaluate("(() => { const p = PV.plots[0]; const r = p.over.getBoundingClientRect(); "
                                               "return [r.left + p.valToPos(3, 'x'), r.top + r.height / 2]; })()"))
            browser.wait_for("location.hash.startsWith('#/samples') && document.body.dataset.state === 'ready'")
            shots.append(browser.screenshot(out / "samples.png"))
            browser.click("a.group-link, #samples-table tbody td:nth-child(3) a")
            browser.wait_for("location.hash.startsWith('#/group') && document.body.dataset.state === 'ready'")
            shots.append(browser.screenshot(out / "group.png"))
            browser.goto(url + "#/disagreements")
            shots.append(browser.screenshot(out / "disagreements.png"))
        with viewing(fixtures / "episodes.scored.jsonl") as url:
            browser.goto(url + "#/samples")
            browser.click("#samples-table tbody tr[data-index='0']")
            browser.wait_for("location.hash.startsWith('#/sample/') && document.body.dataset.state === 'ready'")
            shots.append(browser.screenshot(out / "episode.png"))
        with viewing(fixtures / "audit") as url:
            browser.goto(url + "#/audit")
            browser.click("td.cell.fail")
            browser.wait_for("!!document.querySelector('.cell-detail .probe')")
            shots.append(browser.screenshot(out / "audit.png"))
        with viewing(fixtures / "evals") as url:
            browser.goto(url + "#/eval")
            shots.append(browser.screenshot(out / "eval-subsets.png"))
            browser.click("td[data-subset='chat'][data-report='0']")
            browser.wait_for("location.hash.startsWith('#/eval/items') && document.body.dataset.state === 'ready'")
            shots.append(browser.screenshot(out / "eval.png"))
    return shots


if __name__ == "__main__":
    for shot in take(Path(sys.argv[1]), Path(sys.argv[2])):
        print(shot)
