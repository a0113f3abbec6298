"""NeMo-Gym's resources-server protocol (nemo-gym 0.7.0), single-turn, on `payoff serve`.

Routes (NeMo-Gym's ``SimpleResourcesServer``) and what payoff does with them:
- ``POST /seed_session``: nothing to set up for a single-turn reward; a ``ResourcesSeedSessionRequest``
  (``resources_session_id``, ``episode_id``, ``task_id``, ``task_data``) gets its
  ``resources_session_id`` back, the older empty body an empty object.
- ``POST /verify``: a ``BaseVerifyRequest`` (``responses_create_params``, ``response``, plus the
  dataset row's own fields) becomes one payoff `Sample` and is scored by the served reward:
  the prompt is ``responses_create_params.input`` (``instructions`` first, as a system message);
  the completion is the text of the model's final assistant ``message`` (only ``output_text``
  parts: never reasoning, tool output or the prompt); its ``function_call`` items are the sample's
  tool calls (``meta["output_tools"]``, Chat Completions form); the reference is the row's
  ``reference``/``answer``/``solution``/``ground_truth``/``expected_answer``; every other row field
  is ``meta``. The answer is the request echoed with ``reward``, ``reward_components`` (payoff's
  components: a ``BaseMultiRewardVerifyResponse``), ``mask_sample``, ``failure_kind``,
  ``failure_reason`` and ``payoff_status``:

  | payoff status | reward | mask_sample | failure_kind |
  |---|---|---|---|
  | ok | the score | false | none |
  | abstain | 0.0 | true | ``payoff:abstain`` |
  | error | 0.0 | true | ``verifier_error`` |
  | timeout | 0.0 | true | ``payoff:timeout`` |

  NeMo-Gym's ``reward`` is a required float, so a sample with no score carries 0.0 and
  ``mask_sample`` keeps it out of every quality metric (NeMo-Gym's rule: the reward is not a valid
  measurement); ``failure_reason`` says why. ``payoff:...`` kinds are namespaced, as NeMo-Gym's
  vocabulary allows for what its shared set lacks.
- ``POST /close_session``: nothing to release; the ``resources_session_id`` is confirmed.
- ``POST /aggregate_metrics``: ``{"verify_responses": [...]}`` -> NeMo-Gym's ``AggregateMetrics``
  fields: mean/max/min/median/std of ``reward`` over the unmasked responses, overall
  (``agent_metrics``, ``key_metrics``) and per task (``group_level_metrics``, by ``_ng_task_index``),
  with the masked count and fraction.

Multi-turn: a payoff environment behind the same routes, as a thin layer over the server's
episode sessions (`payoff.serve.sessions`). The environment is the task row's ``env`` field, else
the server's ``--env``; with neither, the routes are the single-turn ones above.

- ``POST /seed_session`` opens an episode session on the task row (NeMo-Gym's ``task_data``;
  for the older body, the row's own fields, its prompt taken from ``responses_create_params``)
  and sets the cookie ``payoff_session``: NeMo-Gym's agents send a resources server's cookies
  back on every tool call and on ``/verify``. Seeding the same ``resources_session_id`` again
  returns the same session; once closed, an id cannot be seeded again (409), as NeMo-Gym's
  session contract asks.
- ``POST /<tool>`` (one route per environment tool; the body is the call's arguments, as
  NeMo-Gym's agents send them): one assistant turn with that one call, stepped in the session;
  the answer is the tool message's text (NeMo-Gym hands the body to the model as the tool's
  output). A call after the episode ended (a limit) is a 409 whose text says which limit.
- ``POST /verify``: the final assistant message of ``response.output`` is the episode's last
  turn; the session is scored by the environment's reward (the same Outcome `run_episode` gives
  in process) and answered as above, with ``payoff_episode`` (turns, tool calls, how it
  ended). A session reaped at its TTL is ``mask_sample`` with
  ``failure_kind`` ``session_expired``; a cookie naming no session, ``session_lost``.
- ``POST /close_session``: the session is closed and its environment released (the Python
  environment's process killed); closing an unknown id succeeds.

The tool schemas for the dataset's ``responses_create_params.tools`` are `responses_tools` of
the environment's (Chat Completions) schemas.
"""

from __future__ import annotations

import json
import secrets
import statistics
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse

from payoff.core import REFERENCE_KEYS, Outcome, Sample

REFERENCE_FIELDS = (*REFERENCE_KEYS, "expected_answer")
PROTOCOL_FIELDS = ("responses_create_params", "response")
TASK_INDEX, ROLLOUT_INDEX = "_ng_task_index", "_ng_rollout_index"
FAILURE_KINDS = {"abstain": "payoff:abstain", "error": "verifier_error", "timeout": "payoff:timeout"}
COOKIE = "payoff_session"
CLOSED_KEPT = 10_000  # closed resources_session_ids remembered, so a late seed cannot reopen one


def _text(content: Any, kinds: tuple[str, ...]) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") in kinds)
    return ""


def prompt_messages(params: dict[str, Any]) -> str | list[dict[str, Any]]:
    """The Responses API input as chat messages (a bare string input stays a string)."""
    given = params.get("input")
    instructions = params.get("instructions")
    if isinstance(given, str) and not instructions:
        return given
    items = [{"role": "user", "content": given}] if isinstance(given, str) else list(given or [])
    messages = [{"role": "system", "content": instructions}] if instructions else []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("responses_create_params.input: items must be objects")
        if item.get("type", "message") == "message":
            messages.append({"role": item.get("role", "user"), "content": _text(item.get("content"), ("input_text", "output_text", "text"))})
    return messages


def verify_sample(body: dict[str, Any]) -> Sample:
    """One payoff Sample from a /verify body (see the module's docstring)."""
    params, response = body.get("responses_create_params"), body.get("response")
    if not isinstance(params, dict) or not isinstance(response, dict):
        raise ValueError("a /verify body needs the objects 'responses_create_params' and 'response'")
    output = response.get("output")
    if not isinstance(output, list):
        raise ValueError("response.output: a list of output items is required")
    final, tools = "", []
    for item in output:
        if not isinstance(item, dict):
            raise ValueError("response.output: items must be objects")
        if item.get("type") == "message" and item.get("role", "assistant") == "assistant":
            final = _text(item.get("content"), ("output_text",))  # the last assistant message is the answer
        elif item.get("type") == "function_call":
            tools.append({"id": item.get("call_id"), "type": "function",
                          "function": {"name": item.get("name"), "arguments": item.get("arguments", "")}})
    row = {k: v for k, v in body.items() if k not in PROTOCOL_FIELDS and not k.startswith("_ng_")}
    reference = next((row.pop(k) for k in REFERENCE_FIELDS if k in row), None)
    meta = dict(row)
    if tools:
        meta["output_tools"] = tools
    group = body.get(TASK_INDEX)
    return Sample(completion=final, prompt=prompt_messages(params), reference=reference, meta=meta,
                  group=group if isinstance(group, (int, str)) and not isinstance(group, bool) else None)


def verify_response(body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """The /verify answer: the request echoed with the reward and NeMo-Gym's failure fields."""
    scored = outcome.status == "ok"
    reason = None if scored else str(outcome.info.get("error") or outcome.info.get("reason") or outcome.status)
    return {**body, "reward": float(outcome.score) if scored else 0.0, "reward_components": dict(outcome.components),
            "mask_sample": not scored, "failure_kind": None if scored else FAILURE_KINDS[outcome.status], "failure_reason": reason,
            "payoff_status": outcome.status}


def seed_session(body: dict[str, Any]) -> dict[str, Any]:
    session = body.get("resources_session_id")
    return {"resources_session_id": session} if isinstance(session, str) else {}


def close_session(body: dict[str, Any]) -> dict[str, Any]:
    session = body.get("resources_session_id")
    if not isinstance(session, str):
        raise ValueError("resources_session_id: a string is required")
    return {"resources_session_id": session}


def _stats(rewards: list[float], prefix: str = "reward") -> dict[str, float]:
    if not rewards:
        return {}
    return {f"mean/{prefix}": statistics.fmean(rewards), f"max/{prefix}": max(rewards), f"min/{prefix}": min(rewards),
            f"median/{prefix}": statistics.median(rewards), f"std/{prefix}": statistics.pstdev(rewards)}


def aggregate_metrics(body: dict[str, Any]) -> dict[str, Any]:
    responses = body.get("verify_responses")
    if not isinstance(responses, list) or not all(isinstance(r, dict) for r in responses):
        raise ValueError("verify_responses: a list of verify responses is required")
    scored = [r for r in responses if not r.get("mask_sample")]
    for index, response in enumerate(scored):
        if isinstance(response.get("reward"), bool) or not isinstance(response.get("reward"), (int, float)):
            raise ValueError(f"verify_responses.{index}.reward: a number is required")
    coverage = {"num_rollouts": len(responses), "num_masked": len(responses) - len(scored),
                "masked_fraction": (len(responses) - len(scored)) / len(responses) if responses else 0.0}
    overall = {**coverage, **_stats([float(r["reward"]) for r in scored])}
    tasks: dict[Any, list[float]] = {}
    for response in scored:
        tasks.setdefault(response.get(TASK_INDEX), []).append(float(response["reward"]))
    groups = [{TASK_INDEX: task, **_stats(rewards)} for task, rewards in tasks.items() if task is not None]
    key = {k: overall[k] for k in ("mean/reward", "masked_fraction") if k in overall}
    return {"group_level_metrics": groups, "agent_metrics": overall, "key_metrics": key, "repeat_level_metrics": []}


def responses_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat Completions tool schemas (what an environment's reset gives) as the Responses API's
    function tools (what a NeMo-Gym dataset row's ``responses_create_params.tools`` holds)."""
    return [{"type": "function", "name": t["function"]["name"], "description": t["function"].get("description", ""),
             "parameters": t["function"].get("parameters", {}), "strict": False} for t in tools]


def session_row(body: dict[str, Any], default_env: str | None) -> tuple[str | None, dict[str, Any]]:
    """(the environment, the task row) of a /seed_session body: the typed request's ``task_data``,
    or the older body's own fields (its prompt from ``responses_create_params.input``)."""
    if isinstance(body.get("resources_session_id"), str):
        row = body.get("task_data")
        if not isinstance(row, dict):
            raise ValueError("task_data: an object is required")
        row = dict(row)
    else:
        row = {k: v for k, v in body.items() if k not in PROTOCOL_FIELDS and not k.startswith("_ng_")}
        params = body.get("responses_create_params")
        if "prompt" not in row and isinstance(params, dict):
            row["prompt"] = prompt_messages(params)
    env = row.pop("env", None) or default_env
    if env is not None and not isinstance(env, str):
        raise ValueError("env: an environment name is required")
    return env, row


def tool_turn(name: str, arguments: Any) -> dict[str, Any]:
    """The assistant turn a NeMo-Gym tool request stands for: one call, with a fresh id."""
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": f"call_{secrets.token_hex(6)}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]}


def lost_session(body: dict[str, Any], kind: str, reason: str) -> dict[str, Any]:
    return {**body, "reward": 0.0, "reward_components": {}, "mask_sample": True, "failure_kind": kind,
            "failure_reason": reason, "payoff_status": "error"}


def add_routes(app: Any, score: Callable[[list[Sample]], Awaitable[list[Outcome]]], read_body: Callable[[Any], Awaitable[Any]],
               problem: Callable[..., Exception], in_session: Callable[..., Awaitable[Any]], default_env: str | None = None) -> None:
    """Mount the routes on the reward server's FastAPI ``app``: ``score`` is the server's own
    engine path, ``read_body`` its size-limited JSON reader, ``problem`` its HTTP error,
    ``in_session`` its call on the episode sessions, ``default_env`` its ``--env``."""
    opened: OrderedDict[str, str] = OrderedDict()  # resources_session_id -> payoff session id
    closed: OrderedDict[str, None] = OrderedDict()

    async def body_of(request: Request) -> dict[str, Any]:
        data = await read_body(request)
        if not isinstance(data, dict):
            raise problem(422, "body: a JSON object is required")
        return data

    def checked(function: Callable[..., Any], *data: Any) -> Any:
        try:
            return function(*data)
        except ValueError as error:
            raise problem(422, str(error)) from None

    @app.post("/seed_session")
    async def seed(request: Request) -> JSONResponse:
        data = await body_of(request)
        answer = checked(seed_session, data)
        env, row = checked(session_row, data, default_env)
        if env is None:  # single-turn: nothing to hold; NeMo-Gym's environment servers still want a cookie
            response = JSONResponse(answer)
            if "resources_session_id" in answer:
                response.set_cookie("payoff_resources_session", answer["resources_session_id"], httponly=True, samesite="strict")
            return response
        resources_id = data.get("resources_session_id")
        if resources_id in closed:
            raise problem(409, f"resources session {resources_id!r} was closed; a seed after close does not reopen it")
        session = opened.get(resources_id) if resources_id is not None else None
        if session is None:
            session = (await in_session("open", env, row, None, None))["session"]
            if resources_id is not None:
                opened[resources_id] = session
        response = JSONResponse(answer)
        response.set_cookie(COOKIE, session, httponly=True, samesite="strict")
        return response

    @app.post("/verify")
    async def verify(request: Request) -> JSONResponse:
        data = await body_of(request)
        sample = checked(verify_sample, data)
        session = request.cookies.get(COOKIE)
        if session is None:
            [outcome] = await score([sample])
            return JSONResponse(json.loads(json.dumps(verify_response(data, outcome), default=repr)))
        try:
            await in_session("step", session, {"role": "assistant", "content": sample.completion})
        except Exception as error:  # noqa: BLE001 - the episode already ended (a limit): score what it was
            if getattr(error, "status", None) != 409:
                return JSONResponse(_lost(data, error))
        try:
            scored = await in_session("score", session)
        except Exception as error:  # noqa: BLE001
            return JSONResponse(_lost(data, error))
        outcome = Outcome(score=scored["reward"], status=scored["status"], components=scored["components"], info=scored["info"])
        answer = verify_response(data, outcome)
        answer["payoff_episode"] = {k: scored["info"].get(k) for k in ("turns", "tool_calls", "ended")}
        return JSONResponse(json.loads(json.dumps(answer, default=repr)))

    def _lost(data: dict[str, Any], error: Exception) -> dict[str, Any]:
        status, message = getattr(error, "status", 500), getattr(error, "message", str(error))
        if status not in (404, 410):
            raise error
        return lost_session(data, "session_expired" if status == 410 else "session_lost", message)

    @app.post("/close_session")
    async def close(request: Request) -> JSONResponse:
        data = await body_of(request)
        answer = checked(close_session, data)
        resources_id = data["resources_session_id"]
        session = opened.pop(resources_id, None) or request.cookies.get(COOKIE)
        closed[resources_id] = None
        while len(closed) > CLOSED_KEPT:
            closed.popitem(last=False)
        if session is not None:
            try:
                await in_session("close", session)
            except Exception as error:  # noqa: BLE001 - already closed or reaped: closing it again succeeds
                if getattr(error, "status", None) not in (404, 410):
                    raise
        response = JSONResponse(answer)
        response.delete_cookie(COOKIE)
        return response

    @app.post("/aggregate_metrics")
    async def aggregate(request: Request) -> JSONResponse:
        return JSONResponse(checked(aggregate_metrics, await body_of(request)))

    @app.post("/{tool}")
    async def tool(tool: str, request: Request) -> PlainTextResponse:
        """A tool call of the session's environment (registered last: the routes above win)."""
        session = request.cookies.get(COOKIE)
        if session is None:
            raise problem(404, f"no route /{tool}, and no episode session: a tool call needs the cookie /seed_session sets")
        arguments = await read_body(request)
        result = await in_session("step", session, tool_turn(tool, arguments))
        replies = [m.get("content") or "" for m in result["messages"] if m.get("role") == "tool"]
        if not replies:
            return PlainTextResponse(f"error: the episode has ended ({result['ended']}); no tool ran", status_code=409)
        return PlainTextResponse("\n".join(replies))


ROUTES = {"/seed_session", "/verify", "/close_session", "/aggregate_metrics"}
