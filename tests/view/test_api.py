"""The viewer's JSON API and access rules over real files, through a real `payoff view` process on
127.0.0.1 (real HTTP, no test client)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.view.serving import ROOT, viewing


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            return response.status, json.loads(body) if response.headers.get("content-type", "").startswith("application/json") else body
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_a_run_folder(made: dict[str, Path]) -> None:
    samples = [json.loads(line) for line in (made["run"] / "samples.jsonl").read_text().splitlines()]
    with viewing(made["run"]) as url:
        _, source = get(url + "api/source")
        assert source["views"] == ["curves", "samples", "disagreements"] and source["summary"]["steps"] == 4
        _, metrics = get(url + "api/metrics")
        panels = {p["title"]: p["keys"] for p in metrics["panels"]}
        assert metrics["steps"] == [1, 2, 3, 4]
        assert {"reward_mean", "reward/vowels", "reward/letters"} <= set(panels["reward"]) and "accuracy" in panels["accuracy"]
        assert "kl" in panels["KL"] and "completion_length" in panels["length"] and "warnings" in panels["monitor"]

        _, page = get(url + "api/samples?size=10")
        assert page["total"] == len(samples) == 64 and len(page["rows"]) == 10 and page["done"]
        _, step = get(url + "api/samples?step=2")
        assert step["total"] == 16 and {r["step"] for r in step["rows"]} == {2}
        errors = [i for i, s in enumerate(samples) if s["status"] == "error"]
        _, failed = get(url + "api/samples?status=error&size=500")
        assert errors and [r["index"] for r in failed["rows"]] == errors and all(r["reward"] is None for r in failed["rows"])
        _, ranged = get(url + "api/samples?lo=0.3&size=500")
        assert [r["index"] for r in ranged["rows"]] == [i for i, s in enumerate(samples) if s["reward"] is not None and s["reward"] >= 0.3]

        _, one = get(url + "api/samples/5")
        assert one["row"] == samples[5]
        _, group = get(url + "api/group?key=" + samples[0]["group"])
        members = [m for m in group["members"]]
        assert [m["row"] for m in members] == [s for s in samples if s["group"] == samples[0]["group"]]
        scored = [m["advantage"] for m in members if m["row"]["status"] == "ok"]
        assert abs(sum(scored)) < 1e-4 and group["advantage_source"].startswith("grpo")  # GRPO's advantages sum to 0

        _, found = get(url + "api/disagreements")
        changes = [d["signal_change"] for d in found["disagreements"]]
        assert changes and changes == sorted(changes, reverse=True) and found["disagreements"][0]["measure"] == "advantage"
        assert found["disagreements"][0]["group"] in {s["group"] for s in samples}

        assert get(url + "api/samples?status=fine")[0] == 400
        assert get(url + "api/samples?component=nope&lo=1")[0] == 400
        assert get(url + "api/samples/999")[0] == 404
        assert get(url + "api/audit")[1] == {"reports": [], "matrices": []}
        assert get(url + "static/../app.py")[0] == 404


def test_a_scored_file_of_episodes(made: dict[str, Path]) -> None:
    rows = [json.loads(line) for line in made["episodes"].read_text().splitlines()]
    with viewing(made["episodes"]) as url:
        assert get(url + "api/source")[1]["views"] == ["samples"]
        _, page = get(url + "api/samples?episodes=1")
        assert page["total"] == 4 and page["components"] == ["answer", "tool_calls"]
        assert page["rows"][0]["episode"] == {"turns": 2, "tool_calls": 1, "messages": 6}
        _, right = get(url + "api/samples?component=answer&lo=1")
        assert [r["index"] for r in right["rows"]] == [i for i, r in enumerate(rows) if r["components"]["answer"] == 1.0]
        _, one = get(url + "api/samples/0")
        assert one["row"]["messages"][2]["tool_calls"][0]["function"]["name"] == "calculator"


def test_audit_and_eval_reports(made: dict[str, Path]) -> None:
    with viewing(made["audit"]) as url:
        _, audit = get(url + "api/audit")
        assert audit["reports"][0]["verdict"] == "FAIL" and audit["reports"][0]["families"]
        matrix = audit["matrices"][0]
        assert matrix["hacks"] == ["answer_spam", "long_padding", "tool_result_echo"] and matrix["rewards"] == ["math", "length_share"]
        assert {c["status"] for c in matrix["cells"]} == {"pass", "fail", "n/a"} and matrix["false_negatives"]["length_share"]["missed"] == 2
    with viewing(made["evals"]) as url:
        _, evals = get(url + "api/eval")
        assert [r["name"] for r in evals["reports"]] == ["length", "vowels"] and evals["subsets"] == ["chat", "math"]
        items = [json.loads(line) for line in (made["evals"] / "length" / "items.jsonl").read_text().splitlines()]
        _, wrong = get(url + "api/eval/items?report=0&subset=chat")
        assert [i["row"] for i in wrong["rows"]] == [i["row"] for i in items if i["subset"] == "chat" and not i["correct"]] == [1]
        assert evals["reports"][0]["subsets"]["chat"] == 0.5
        assert get(url + "api/eval/items?report=7")[0] == 404


def test_access_loopback_host_and_token(made: dict[str, Path]) -> None:
    with viewing(made["episodes"]) as url:
        assert get(url + "api/source", {"Host": "attacker.example"})[0] == 401  # DNS rebinding: not a loopback name
        assert get(url + "api/source", {"Host": "localhost:1"})[0] == 200
    with viewing(made["episodes"], "--host", "0.0.0.0", env={"PAYOFF_VIEW_TOKEN": "s3cret"}) as url:
        assert url.endswith("/?token=s3cret")
        base = url.split("?")[0].replace("0.0.0.0", "127.0.0.1")
        assert get(base + "api/source")[0] == 401
        assert get(base + "api/source", {"Authorization": "Bearer wrong"})[0] == 401
        assert get(base + "api/source", {"Authorization": "Bearer s3cret"})[0] == 200

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any) -> None:
                return None

        try:
            urllib.request.build_opener(NoRedirect).open(base + "?token=s3cret", timeout=30)
            raise AssertionError("expected a redirect")
        except urllib.error.HTTPError as answer:
            assert answer.code == 303 and "payoff_view=s3cret" in answer.headers["set-cookie"] and "HttpOnly" in answer.headers["set-cookie"]
        assert get(base + "api/source", {"Cookie": "payoff_view=s3cret"})[0] == 200


def test_a_path_with_nothing_to_view_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "payoff", "view", str(tmp_path)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2 and "found none of metrics.jsonl" in " ".join(done.stderr.split())  # Rich wraps lines
    (tmp_path / "x.json").write_text("{}")
    done = subprocess.run([sys.executable, "-m", "payoff", "view", str(tmp_path / "x.json")], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2 and "not a report the viewer reads" in " ".join(done.stderr.split())
