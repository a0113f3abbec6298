"""The float32 matrix-product route (`payoff.models.matmul`): oneDNN only where it is exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from payoff.models.matmul import ENV, ROUTE, exact

PROBE = """
import json, threading, torch
from payoff.models.matmul import fast_fp32_matmul, exact
before = torch.backends.mkldnn.matmul.fp32_precision
answers = []
threads = [threading.Thread(target=lambda: answers.append(fast_fp32_matmul())) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
route = fast_fp32_matmul()
ok = exact(torch.matmul)
print(json.dumps({"before": before, "library": route.library, "why": route.why, "after": torch.backends.mkldnn.matmul.fp32_precision,
                  "cached": len(answers) == 4 and all(a is route for a in answers), "exact": ok}))
"""


def probe(env: dict[str, str], setup: str = "") -> dict:
    done = subprocess.run([sys.executable, "-c", setup + PROBE], capture_output=True, text=True, check=True,
                          env={**os.environ, **env})
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_exact_accepts_float32_products_and_rejects_bfloat16_rounded_inputs() -> None:
    assert exact(lambda a, b: (a.double() @ b.double()).float())
    assert not exact(lambda a, b: a.bfloat16().float() @ b.bfloat16().float())
    # a product wrong by 1e-4 of its scale (ten times the bound) is not float32-exact either
    assert not exact(lambda a, b: (a @ b) * (1 + 1e-4))


def test_the_probe_keeps_only_an_exact_route_and_runs_once_per_process_whichever_thread_asks() -> None:
    got = probe({ENV: "auto"})
    assert got["before"] == "none" and got["cached"] and got["exact"]
    if got["library"] == "onednn":  # this machine's oneDNN was exact and faster: the products go there
        assert got["after"] == ROUTE and "float32-exact" in got["why"]
    else:  # not faster or not exact here: PyTorch's choice untouched, and the reason given
        assert got["after"] == "none" and got["why"]


def test_the_probe_can_be_turned_off_and_leaves_a_users_own_setting_alone() -> None:
    off = probe({ENV: "default"})
    assert (off["library"], off["after"]) == ("default", "none") and ENV in off["why"]
    typo = probe({ENV: "off"})
    assert (typo["library"], typo["after"]) == ("default", "none") and "not 'auto' or 'default'" in typo["why"]
    mine = probe({ENV: "auto"}, "import torch\ntorch.backends.mkldnn.matmul.fp32_precision = 'ieee'\n")
    assert (mine["library"], mine["after"]) == ("default", "ieee") and "already 'ieee'" in mine["why"]


def test_loading_a_model_runs_the_probe() -> None:
    # each model loader runs the probe itself; the setting afterwards is what the probe decided
    script = """
import json, torch
import payoff.models.matmul as matmul
from payoff.models.default import load_policy
ran = matmul._route is not None
load_policy()
route = matmul._route
print(json.dumps([ran, route is not None, route and route.library, torch.backends.mkldnn.matmul.fp32_precision]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env={**os.environ, ENV: "auto"})
    ran_before, ran_after, library, setting = json.loads(done.stdout.strip().splitlines()[-1])
    assert not ran_before and ran_after
    assert setting == (ROUTE if library == "onednn" else "none")
