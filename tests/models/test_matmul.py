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
with torch.no_grad():
    ok = exact(lambda a, b: a @ b)
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


def test_loading_a_model_applies_the_probe() -> None:
    # a model loader runs the probe: after load_trunk the route is whatever the probe decided
    script = ("import json, torch\nfrom payoff.models.reward_model import load_trunk\nfrom payoff.models.matmul import fast_fp32_matmul\n"
              "load_trunk('smollm2-135m-instruct')\nroute = fast_fp32_matmul()\n"
              "print(json.dumps([route.library, torch.backends.mkldnn.matmul.fp32_precision]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env={**os.environ, ENV: "auto"})
    library, setting = json.loads(done.stdout.strip().splitlines()[-1])
    assert setting == (ROUTE if library == "onednn" else "none")
