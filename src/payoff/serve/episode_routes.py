"""The HTTP routes of episode sessions on `payoff serve` (the sessions: `payoff.serve.sessions`).

One episode at a time:
- ``POST /v1/episodes`` {env, row, limits?, reward?} -> {session, env, messages, tools, ended, ttl_s}
- ``POST /v1/episodes/{session}/step`` {message} -> {messages, done, ended}
- ``POST /v1/episodes/{session}/score[?close=true]`` -> {reward, status, components, info, messages}
- ``DELETE /v1/episodes/{session}`` -> {session, closed}
- ``GET /v1/episodes`` -> open sessions, the cap, the TTL, the environments served

Many episodes in lockstep, one request per turn for all of them (a trainer generates a batch of
turns at once; one HTTP round trip per episode and turn would cost more than a trivial tool):
- ``POST /v1/batch/episodes/open`` {episodes: [{env, row, limits?, reward?}, ...]}
- ``POST /v1/batch/episodes/step`` {steps: [{session, message}, ...]}
- ``POST /v1/batch/episodes/score`` {sessions: [...], close?}
each -> {results: [...]}, one per item, in order: what the single route answers, or
{error, status[, retry_after]} for an item that failed (never the whole batch for one item).

Every call runs off the event loop on a thread pool (environments block); a `SessionError` is
the HTTP answer it names (404 unknown, 410 expired or closed, 409 busy or ended, 422 malformed,
503 with Retry-After when full). A batch is one hop to the pool, not one per item: its items run
one after another on that thread while each is quick (a trivial tool steps in tens of
microseconds, less than handing an item to a thread and back through the event loop costs), and
as soon as one item takes longer than `FAN_OUT_AT_ONCE_S`, or two in a row longer than
`FAN_OUT_S`, the items left run in parallel on a second pool (the items after a slow or hanging
one wait for it once, then run side by side; the batch's answer waits for its slowest item either
way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from fastapi import Request
from pydantic import BaseModel, Field

from payoff.serve.fan_out import FAN_OUT_AT_ONCE_S, FAN_OUT_S, quick_then_fan
from payoff.serve.session_errors import SessionError


class EpisodeRequest(BaseModel):
    env: str = Field(description="the environment's name (GET /v1/episodes lists those served)")
    row: dict[str, Any] = Field(description="the task row: prompt, reference, meta, as in `payoff score` input")
    limits: dict[str, Any] | None = Field(None, description="max_turns, max_tool_calls, max_tokens, wall_s (at most the server's)")
    reward: str | None = Field(None, description="a registered reward name (default: the environment's)")


class StepRequest(BaseModel):
    message: dict[str, Any] = Field(description="the policy's assistant message, OpenAI chat format")


class BatchOpenRequest(BaseModel):
    episodes: list[EpisodeRequest]


class BatchStep(StepRequest):
    session: str


class BatchStepRequest(BaseModel):
    steps: list[BatchStep]


class BatchScoreRequest(BaseModel):
    sessions: list[str]
    close: bool = False


def _plain_episode(item: Any) -> bool:
    """An `EpisodeRequest` that pydantic would take as it is (other keys are ignored by both)."""
    return (type(item) is dict and type(item.get("env")) is str and type(item.get("row")) is dict
            and type(item.get("limits", None)) in (dict, type(None)) and type(item.get("reward", None)) in (str, type(None)))


def plain(model: type[BaseModel], data: Any) -> bool:
    """A common, well-formed body, checked by hand: the server's reader then hands the dict on
    without pydantic (which would walk every message and row; the sessions check each message
    and row themselves). Pydantic, and its error message, only for the rest."""
    if type(data) is not dict:
        return False
    if model is StepRequest:
        return type(data.get("message")) is dict
    if model is BatchStepRequest:
        steps = data.get("steps")
        return type(steps) is list and all(type(s) is dict and type(s.get("session")) is str and type(s.get("message")) is dict
                                           for s in steps)
    if model is EpisodeRequest:
        return _plain_episode(data)
    if model is BatchOpenRequest:
        episodes = data.get("episodes")
        return type(episodes) is list and all(_plain_episode(e) for e in episodes)
    return False


def _opening(episode: dict[str, Any] | EpisodeRequest) -> tuple[Any, ...]:
    """The sessions' ``open`` call for one episode request, read as a plain dict or a model."""
    if type(episode) is dict:
        return ("open", episode["env"], episode["row"], episode.get("limits"), episode.get("reward"))
    return ("open", episode.env, episode.row, episode.limits, episode.reward)


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def add_routes(app: Any, state: dict[str, Any], read_json: Callable[..., Awaitable[Any]], problem: Callable[..., Exception],
               respond: Callable[[Any], Any]) -> Callable[..., Awaitable[Any]]:
    """Mount the routes; ``state["sessions"]`` and ``state["steps"]`` (the thread pool) are set
    by the app's lifespan. Returns `in_session`, the call the NeMo-Gym layer makes too."""

    def call(method: str, *args: Any) -> Awaitable[Any]:
        return asyncio.get_running_loop().run_in_executor(state["steps"], getattr(state["sessions"], method), *args)

    async def in_session(method: str, *args: Any) -> Any:
        """A call on the sessions, off the event loop; its SessionError as the HTTP answer."""
        try:
            return await call(method, *args)
        except SessionError as error:
            headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
            raise problem(error.status, error.message, headers) from None

    async def each(calls: list[tuple[Any, ...]]) -> list[Any]:
        return await asyncio.get_running_loop().run_in_executor(state["steps"], run_batch, state["sessions"], calls, state["fan"])

    @app.post("/v1/episodes", openapi_extra=_schema(EpisodeRequest))
    async def open_episode(request: Request) -> Any:
        """Open an episode session: {env, row, limits?, reward?} -> {session, messages, tools, ended}."""
        body = await read_json(request, EpisodeRequest)  # a plain dict when well formed (see `plain`)
        return respond(await in_session(*_opening(body)))

    @app.post("/v1/batch/episodes/open", openapi_extra=_schema(BatchOpenRequest))
    async def open_episodes(request: Request) -> Any:
        body = await read_json(request, BatchOpenRequest)
        episodes = body["episodes"] if type(body) is dict else body.episodes
        return respond({"results": await each([_opening(e) for e in episodes])})

    @app.post("/v1/batch/episodes/step", openapi_extra=_schema(BatchStepRequest))
    async def step_episodes(request: Request) -> Any:
        body = await read_json(request, BatchStepRequest)  # a plain dict when well formed (see `plain`)
        steps = body["steps"] if type(body) is dict else [s.model_dump() for s in body.steps]
        return respond({"results": await each([("step", s["session"], s["message"]) for s in steps])})

    @app.post("/v1/batch/episodes/score", openapi_extra=_schema(BatchScoreRequest))
    async def score_episodes(request: Request) -> Any:
        body = await read_json(request, BatchScoreRequest)
        sessions = state["sessions"]
        if not hasattr(sessions, "score_many"):  # sessions on Ray actors: one call each
            return respond({"results": await each([("score", s, body.close) for s in body.sessions])})
        # Local sessions score the whole batch in one call (its rewards together, in the engine).
        results = await asyncio.get_running_loop().run_in_executor(state["steps"], sessions.score_many, body.sessions, body.close,
                                                                   state["fan"])
        return respond({"results": [_failed(r) if isinstance(r, SessionError) else r for r in results]})

    @app.post("/v1/episodes/{session}/step", openapi_extra=_schema(StepRequest))
    async def step_episode(session: str, request: Request) -> Any:
        """One assistant message -> {messages, done, ended}: the environment's answer."""
        body = await read_json(request, StepRequest)
        return respond(await in_session("step", session, body["message"] if type(body) is dict else body.message))

    @app.post("/v1/episodes/{session}/score")
    async def score_episode(session: str, close: bool = False) -> Any:
        """The episode's Outcome ({reward, status, components, info}) and its messages;
        ``?close=true`` closes the session too."""
        return respond(await in_session("score", session, close))

    @app.delete("/v1/episodes/{session}")
    async def close_episode(session: str) -> Any:
        return respond(await in_session("close", session))

    @app.get("/v1/episodes")
    async def episodes() -> Any:
        from payoff.envs import ENVS

        served = state["sessions"].envs
        return respond({**await in_session("stats"), "envs": sorted(served if served is not None else ENVS)})

    return in_session


def run_batch(sessions: Any, calls: Sequence[tuple[Any, ...]], fan: Executor, fan_out_s: float = FAN_OUT_S,
              at_once_s: float = FAN_OUT_AT_ONCE_S) -> list[Any]:
    """Each call's answer, in order (a `SessionError` as {error, status[, retry_after]}): one after
    another while they are quick, the rest in parallel on `fan` once one takes over `at_once_s`
    or two in a row over `fan_out_s` (`payoff.serve.fan_out.quick_then_fan`)."""
    return quick_then_fan(lambda k: _answer(sessions, calls[k]), len(calls), fan, fan_out_s, at_once_s)


def _answer(sessions: Any, item: tuple[Any, ...]) -> Any:
    method, *args = item
    try:
        return getattr(sessions, method)(*args)
    except SessionError as error:
        return _failed(error)


def _failed(error: SessionError) -> dict[str, Any]:
    """A batch item's failure: {error, status[, retry_after]}."""
    failed: dict[str, Any] = {"error": error.message, "status": error.status}
    if error.retry_after is not None:
        failed["retry_after"] = error.retry_after
    return failed


ROUTES = {"/v1/episodes", "/v1/batch/episodes/open", "/v1/batch/episodes/step", "/v1/batch/episodes/score"}
