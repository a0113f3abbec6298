"""The reward contract: what a sample is, what a reward returns, and what a reward is.

It imports only its helpers (`identity`, `parameters`, `episode`, which import nothing of payoff);
everything else builds on it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from payoff.episode import EpisodeError, check_messages, final_text, opening
from payoff.identity import PAYOFF_VERSION, closure_identity, function_source, module_sources
from payoff.parameters import RewardParameterError as RewardParameterError
from payoff.parameters import check_numbers as check_numbers
from payoff.parameters import check_parameter
from payoff.recipes import from_recipe, import_attribute, import_configured, lookup

Status = Literal["ok", "abstain", "error", "timeout"]
Text = str | list[dict[str, Any]]  # plain text, or chat messages (OpenAI format)
STATUSES: tuple[str, ...] = ("ok", "abstain", "error", "timeout")

# Input keys accepted for the reference, in order of preference (datasets disagree on the name).
REFERENCE_KEYS = ("reference", "answer", "solution", "ground_truth")
# The per-call timeout when neither the caller nor the reward names one (engine, rubric sums).
DEFAULT_TIMEOUT_S = 30.0


class SampleError(ValueError):
    """A record cannot be turned into a Sample (no completion, wrong types, a malformed episode)."""


@dataclass(slots=True)
class Sample:
    """One completion to score, or one whole episode.

    `group` identifies the prompt the completion was drawn for, so group rewards (majority vote,
    pairwise) and per-group statistics see the samples of one prompt together.

    `messages`, when given, is the whole trajectory in the OpenAI chat format (see
    `payoff.episode`); `completion` is then its final assistant text (derived when left empty) and
    `prompt` the messages before the first assistant turn (when left empty), so a reward that reads
    only `completion` scores the episode's final answer unchanged.
    """

    completion: str = ""
    prompt: str | list[dict[str, Any]] = ""
    reference: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    group: str | int | None = None
    messages: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.messages is None:
            return
        try:
            check_messages(self.messages)
        except EpisodeError as error:
            raise SampleError(str(error)) from None
        final = final_text(self.messages)
        if not self.completion:
            self.completion = final
        elif self.completion != final:
            raise SampleError(_disagree(self.completion, final))
        if not self.prompt:
            self.prompt = opening(self.messages)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Sample:
        """Build a Sample from a JSON-like dict, accepting the common aliases for `reference`; an
        episode gives `messages` in place of (or beside, agreeing with) `completion`."""
        if not isinstance(record, dict):
            raise SampleError(f"expected a JSON object, got {type(record).__name__}")
        messages = record.get("messages")
        if "completion" not in record and messages is None:
            raise SampleError("missing field 'completion'")  # or 'messages', an episode
        completion = record.get("completion", "")
        if not isinstance(completion, str):
            raise SampleError(f"'completion' must be a string, got {type(completion).__name__}")
        prompt = "" if record.get("prompt") is None else record["prompt"]
        if not isinstance(prompt, (str, list)):
            raise SampleError(f"'prompt' must be a string or a list of messages, got {type(prompt).__name__}")
        meta = record.get("meta") or {}
        if not isinstance(meta, dict):
            raise SampleError(f"'meta' must be an object, got {type(meta).__name__}")
        group = record.get("group")
        if group is not None and not isinstance(group, (str, int)):
            raise SampleError(f"'group' must be a string or an integer, got {type(group).__name__}")
        reference = next((record[k] for k in REFERENCE_KEYS if k in record), None)
        sample = cls(completion=completion, prompt=prompt, reference=reference, meta=meta, group=group, messages=messages)
        if sample.completion != completion and "completion" in record:  # an explicit "" against a final text
            raise SampleError(_disagree(completion, sample.completion))
        return sample

    def to_dict(self) -> dict[str, Any]:
        row = {"prompt": self.prompt, "completion": self.completion, "reference": self.reference, "meta": self.meta, "group": self.group}
        if self.messages is not None:  # only then: a plain sample's dict (and cache key) stays as it was
            row["messages"] = self.messages
        return row


def _disagree(completion: str, final: str) -> str:
    return f"'completion' {completion[:60]!r} is not the final assistant text of 'messages' {final[:60]!r}"


@dataclass(slots=True)
class Outcome:
    """What a reward says about one sample.

    `score` is None unless `status` is ``ok``. ``abstain`` means the reward has no opinion (for
    example the reference cannot be parsed); it is not a zero. `components` keeps every named
    sub-score; `info` carries what a person needs to understand the score (extracted answer, error
    text, elapsed time).
    """

    score: float | None
    status: Status = "ok"
    components: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; expected one of {STATUSES}")
        if self.status == "ok":
            if self.score is None or not math.isfinite(self.score):
                raise ValueError(f"an ok Outcome needs a finite score, got {self.score!r}")
            self.score = float(self.score)
        elif self.score is not None:
            raise ValueError(f"a {self.status} Outcome carries no score")

    @classmethod
    def ok(cls, score: float, components: dict[str, float] | None = None, **info: Any) -> Outcome:
        return cls(float(score), "ok", dict(components or {}), info)

    @classmethod
    def abstain(cls, reason: str, **info: Any) -> Outcome:
        return cls(None, "abstain", {}, {"reason": reason, **info})

    @classmethod
    def error(cls, message: str, **info: Any) -> Outcome:
        return cls(None, "error", {}, {"error": message, **info})

    @classmethod
    def timeout(cls, seconds: float, **info: Any) -> Outcome:
        return cls(None, "timeout", {}, {"error": f"no result within {seconds:g} s", **info})

    @property
    def is_ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"reward": self.score, "status": self.status, "components": self.components, "info": self.info}


def to_outcome(value: Any, reward_name: str = "reward") -> Outcome:
    """Coerce what a reward function returned into an Outcome.

    A number or bool becomes a score; None becomes an abstention; a non-finite number or any other
    type becomes an error that names the type, so a broken reward is loud instead of a silent 0.
    """
    if isinstance(value, Outcome):
        return value
    if value is None:
        return Outcome.abstain(f"{reward_name} returned None")
    if isinstance(value, (bool, int, float)) or _is_numpy_scalar(value):
        number = float(value)
        if not math.isfinite(number):
            return Outcome.error(f"{reward_name} returned a non-finite score {number!r}")
        return Outcome(number, "ok", {}, {})
    return Outcome.error(f"{reward_name} returned {type(value).__name__}, expected a number or an Outcome")


def _is_numpy_scalar(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0


class Reward:
    """A named reward: a function Sample -> float | Outcome, or, for a group reward,
    list[Sample] -> list[float | Outcome].

    A *batched* reward (``batch_size`` set; a reward model, a PRM, a local judge) is a function
    list[Sample] -> list[float | Outcome] over any samples, not a group: the engine hands it up to
    ``batch_size`` samples of similar length per call, so a model scores many per forward pass.
    Its ``timeout_s`` is per call (one batch).

    Calling a Reward runs it in-process with no timeout; the engine (`payoff.score`) is what runs
    rewards safely over many samples. A Reward knows nothing of pools, timeouts or caches beyond
    the default `timeout` it suggests to the engine.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        is_group: bool = False,
        timeout_s: float | None = None,
        version: str = "1",
        doc: str | None = None,
        params: dict[str, Any] | None = None,
        batch_size: int | None = None,
    ) -> None:
        if batch_size is not None and (is_group or batch_size < 1):
            raise ValueError("batch_size must be >= 1, and a group reward cannot also be batched")
        self.fn = fn
        self.batch_size = batch_size
        self.params = dict(params or {})
        self.name = name or getattr(fn, "__name__", "reward")
        self.is_group = is_group
        self.timeout_s = timeout_s
        self.version = version
        self.doc = inspect.cleandoc(doc or fn.__doc__ or "")
        functools.update_wrapper(self, fn, updated=())

    def with_recipe(self, factory: Callable[..., Reward], *args: Any, **kwargs: Any) -> Reward:
        """Record how to rebuild this reward (``factory(*args, **kwargs)``), for a reward whose
        function is a closure (`math_reward_factory`, wrappers): it then pickles, and so runs
        under the ``spawn`` start method and on Ray, by its recipe."""
        self._recipe = (factory.__module__, factory.__qualname__, args, kwargs)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        recipe = self.__dict__.get("_recipe")
        if recipe is not None:
            return (from_recipe, (recipe, self.name, self.params))
        # `@reward def f` binds the module attribute `f` to this Reward, so pickling `self.fn` by
        # reference would find the Reward instead of the function; pickle the Reward by reference
        # (plus its parameters, for a configured copy).
        module = sys.modules.get(self.__module__)
        qualname = getattr(self, "__qualname__", None)
        found = lookup(module, qualname) if module is not None and qualname else None
        if isinstance(found, Reward) and found.fn is self.fn:
            if found is self:
                return (import_attribute, (self.__module__, self.__qualname__))
            return (import_configured, (self.__module__, self.__qualname__, self.name, self.params))
        return (Reward, (self.fn,), {k: v for k, v in self.__dict__.items() if k != "fn"})

    def configure(self, name: str | None = None, **params: Any) -> Reward:
        """A copy of this reward with keyword parameters for its function, checked against the
        function's signature: ``get_reward("cosine_length").configure(max_length=4096)``."""
        batch_size = params.pop("batch_size", None) if self.batch_size is not None else None
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
            raise RewardParameterError(f"reward {self.name}: batch_size must be a whole number >= 1, got {batch_size!r}")
        accepted = inspect.signature(self.fn).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
        unknown = [key for key in params if key not in accepted and not takes_any]
        if unknown:
            options = [n for n in list(accepted)[1:]]
            raise TypeError(f"reward {self.name} has no parameter(s) {unknown}; it takes {options}")
        params = {key: check_parameter(self, key, value) for key, value in params.items()}
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.params = {**self.params, **params}
        copy.name = name or self.name
        copy.batch_size = batch_size or self.batch_size
        return copy

    def __repr__(self) -> str:
        kind = "group reward" if self.is_group else "batched reward" if self.batch_size else "reward"
        return f"<{kind} {self.name!r}>"

    @property
    def summary(self) -> str:
        """The docstring's first paragraph, on one line."""
        return " ".join(self.doc.split("\n\n", 1)[0].split()) if self.doc else ""

    def __call__(self, sample: Sample | dict | Sequence[Sample | dict]) -> Any:
        if self.is_group:
            samples = [_as_sample(s) for s in sample]  # type: ignore[union-attr]
            return self.score_group(samples)
        if self.batch_size is not None and isinstance(sample, (list, tuple)):
            return self.score_batch([_as_sample(s) for s in sample])
        return self.score_one(_as_sample(sample))  # type: ignore[arg-type]

    async def ascore(self, sample: Sample | dict[str, Any]) -> Outcome:
        """Score one sample on this process's shared engine for this reward (worker processes,
        hard timeouts), without blocking the event loop: ``await reward.ascore(sample)``."""
        # Imported by name: the engine sits above the contract (see docs/architecture.md), and
        # only this convenience needs it.
        shared = importlib.import_module("payoff.engine.shared")
        return (await shared.ascore([sample], self))[0]

    def score_one(self, sample: Sample) -> Outcome:
        if self.batch_size is not None:
            return self.score_batch([sample])[0]
        return to_outcome(self.fn(sample, **self.params), self.name)

    def score_batch(self, samples: list[Sample]) -> list[Outcome]:
        """Outcomes for any list of samples: one call of a batched reward's function, else one
        call per sample."""
        if self.batch_size is None or self.is_group:
            return [self.score_one(s) for s in samples]
        return self._many(samples, "batched reward")

    def score_group(self, samples: list[Sample]) -> list[Outcome]:
        if not self.is_group:
            return self.score_batch(samples)
        return self._many(samples, "group reward")

    def _many(self, samples: list[Sample], kind: str) -> list[Outcome]:
        values = self.fn(samples, **self.params)
        if not isinstance(values, (list, tuple)) or len(values) != len(samples):
            got = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
            message = f"{kind} {self.name} returned {got} values for {len(samples)} samples"
            return [Outcome.error(message) for _ in samples]
        return [to_outcome(v, self.name) for v in values]

    def fingerprint(self) -> str:
        """The reward's whole identity, for caching: payoff's version, the reward's name, version
        and parameters, the values its function closes over (a wrapper's rates, a wrapped
        reward's own fingerprint) and the source of every module its code lives in: the
        function's module and, transitively, the modules of the same package it uses. Editing a
        helper module or a wrapper's rate changes it; an edit elsewhere does not."""
        parts = [PAYOFF_VERSION, self.name, str(self.version), repr(sorted(self.params.items(), key=lambda kv: kv[0]))]
        parts.append(function_source(self.fn))
        identity = getattr(self.fn, "payoff_identity", None)  # e.g. a reward model: the trained weights' digest
        if identity is not None:
            parts.append(str(identity(**self.params)))
        parts.append(closure_identity(self.fn))
        parts.extend(module_sources(self.fn))
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _as_sample(value: Sample | dict) -> Sample:
    return value if isinstance(value, Sample) else Sample.from_dict(value)


# Rewards declared with @reward / @group_reward, by name. payoff.registry resolves names against
# this table, the built-ins, plugins and user code.
REGISTRY: dict[str, Reward] = {}


def _decorate(fn: Callable[..., Any] | None, is_group: bool, **options: Any) -> Any:
    register = options.pop("register", True)

    def wrap(f: Callable[..., Any]) -> Reward:
        made = Reward(f, is_group=is_group, **options)
        if register:
            REGISTRY[made.name] = made
        return made

    return wrap(fn) if fn is not None else wrap


def reward(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    timeout_s: float | None = None,
    version: str = "1",
    register: bool = True,
) -> Any:
    """Make a function `Sample -> float | Outcome` a registered Reward.

    Use bare (`@reward`) or with options (`@reward(name="x", timeout_s=5)`).
    """
    return _decorate(fn, False, name=name, timeout_s=timeout_s, version=version, register=register)


def group_reward(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    timeout_s: float | None = None,
    version: str = "1",
    register: bool = True,
) -> Any:
    """Make a function `list[Sample] -> list[float | Outcome]` a registered group Reward.

    The engine hands it all samples that share a `group` at once.
    """
    return _decorate(fn, True, name=name, timeout_s=timeout_s, version=version, register=register)


def batched_reward(
    fn: Callable[..., Any] | None = None,
    *,
    batch_size: int = 32,
    name: str | None = None,
    timeout_s: float | None = None,
    version: str = "1",
    register: bool = True,
) -> Any:
    """Make a function `list[Sample] -> list[float | Outcome]` over *any* samples a batched Reward
    (model-backed rewards: one forward pass scores many samples). The engine cuts the work into
    batches of up to ``batch_size`` samples of similar length; ``timeout_s`` is per batch."""
    return _decorate(fn, False, name=name, timeout_s=timeout_s, version=version, register=register, batch_size=batch_size)
