"""The reward server: FastAPI app over one engine.

Endpoints: ``POST /v1/score``, ``POST /get_reward`` (OpenRLHF), episode sessions
(``/v1/episodes``: open, step, score, close; see `payoff.serve.sessions`), NeMo-Gym's
resources-server routes (``/seed_session``, ``/verify``, ``/close_session``,
``/aggregate_metrics`` and a tool route per environment tool; see `payoff.serve.nemo_gym`),
``GET /v1/rewards``,
``GET /healthz``, ``GET /metrics`` (Prometheus text) and the OpenAPI spec at ``/openapi.json``.
Bodies are read and parsed here, not by FastAPI, so that a body over the limit is a 413 before
it is all read, and bad UTF-8 or invalid JSON is a 400 that says where. A request that does not
match the schema is a 422 that names the field.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, Field, ValidationError

from payoff.core import Reward, Sample, SampleError
from payoff.serve import episode_routes, nemo_gym
from payoff.serve.batcher import Batcher, Overloaded
from payoff.serve.episode_scoring import EngineScoring
from payoff.serve.openrlhf_protocol import merge, protocol_response, protocol_samples
from payoff.serve.sessions import Sessions

MAX_BODY_BYTES = 16 * 1024 * 1024


class ScoreRequest(BaseModel):
    samples: list[dict[str, Any]] = Field(description="samples as in `payoff score` input: completion, prompt, reference, meta, group")
    reward: str | None = Field(None, description="name of the served reward (optional; must match)")


class OpenRLHFRequest(BaseModel):
    query: list[str]
    prompts: list[str] | None = None
    labels: list[Any] | None = None


class HTTPProblem(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def _plain_score_request(data: Any) -> bool:
    """The common, well-formed body, checked by hand: pydantic (and its error messages) only for
    the rest."""
    if type(data) is not dict or type(data.get("samples")) is not list:
        return False
    reward = data.get("reward")
    return (reward is None or type(reward) is str) and all(type(item) is dict for item in data["samples"])


def _validation_message(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors())


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("payoff_requests", "HTTP requests", ["endpoint", "code"], registry=self.registry)
        self.latency = Histogram("payoff_request_seconds", "request latency", ["endpoint"], registry=self.registry,
                                 buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.outcomes = Counter("payoff_outcomes", "scored samples by status", ["reward", "status"], registry=self.registry)
        self.queued = Gauge("payoff_queued_samples", "samples waiting for the engine", registry=self.registry)


def create_app(reward: Reward, *, workers: int = 2, timeout_s: float | None = None, token: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES, max_pending: int = 20_000, max_batch: int = 1024, engine: Any = None,
               sessions: Any = None, env: str | None = None) -> FastAPI:
    """An app serving ``reward``. ``engine`` overrides the default local `Engine` (e.g. the Ray
    backend); ``sessions`` the episode sessions (default: a local `Sessions`; `RaySessions` keeps
    them on Ray actors); ``env`` is the environment a NeMo-Gym ``/seed_session`` opens when its
    task row names none."""
    from payoff.engine import Engine

    metrics = Metrics()
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        state["engine"] = engine if engine is not None else Engine(reward, workers=workers, timeout_s=timeout_s)
        state["batcher"] = Batcher(state["engine"], max_batch=max_batch, max_pending=max_pending)
        state["batcher"].start()
        state["sessions"] = sessions if sessions is not None else Sessions()
        if getattr(state["sessions"], "scoring", False) is None:  # local sessions: finished episodes score in the workers
            state["sessions"].scoring = state["episode_scoring"] = EngineScoring(workers, timeout_s)
        # Environment steps block (processes, tools with time limits): they run here, off the loop.
        state["steps"] = ThreadPoolExecutor(max_workers=64, thread_name_prefix="payoff-episode")
        # A batch's slow items, in parallel (a pool of its own: a batch waiting on it holds a "steps" thread).
        state["fan"] = ThreadPoolExecutor(max_workers=64, thread_name_prefix="payoff-episode-fan")
        yield
        await state["batcher"].stop()  # uvicorn has already let in-flight requests finish
        state["engine"].close()
        state["steps"].shutdown(wait=False, cancel_futures=True)
        state["fan"].shutdown(wait=False, cancel_futures=True)
        state["sessions"].shutdown()
        if "episode_scoring" in state:
            state["episode_scoring"].close()

    app = FastAPI(title="payoff reward server", version="1", lifespan=lifespan)
    components = [t.name for t in getattr(reward, "terms", [])]

    @app.exception_handler(HTTPProblem)
    async def problem(_: Request, error: HTTPProblem) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)

    app.add_middleware(Guard, token=token, metrics=metrics, known=KNOWN)

    async def read_json(request: Request, model: type[BaseModel] | None) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            raise HTTPProblem(413, f"body of {declared} bytes is over the {max_body_bytes}-byte limit")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise HTTPProblem(413, f"body is over the {max_body_bytes}-byte limit")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            data = orjson.loads(raw)  # checks UTF-8 too
        except orjson.JSONDecodeError:
            # What orjson refuses and the standard library reads (NaN, Infinity, integers past
            # 64 bits), or a body that is not JSON: the standard library's reading, or its error.
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise HTTPProblem(400, f"body is not UTF-8: byte {error.start}") from None
            try:
                data = json.loads(text)
            except json.JSONDecodeError as error:
                raise HTTPProblem(400, f"body is not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
            except RecursionError:
                raise HTTPProblem(400, "body is not JSON this server reads: nested too deeply") from None
        if model is None:  # a protocol that checks its own bodies (NeMo-Gym's)
            return data
        if model is ScoreRequest and _plain_score_request(data):
            return ScoreRequest.model_construct(samples=data["samples"], reward=data.get("reward"))  # already checked
        if episode_routes.plain(model, data):
            return data  # each message is checked by the sessions
        try:
            return model.model_validate(data)
        except ValidationError as error:
            raise HTTPProblem(422, _validation_message(error)) from None

    async def run(samples: list[Sample]) -> list[Any]:
        metrics.queued.set(state["batcher"].pending + len(samples))
        try:
            outcomes = await state["batcher"].score(samples)
        except Overloaded as error:
            raise HTTPProblem(503, f"server busy: {error}", {"Retry-After": "1"}) from None
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        for status, count in counts.items():
            metrics.outcomes.labels(reward.name, status).inc(count)
        return outcomes

    @app.post("/v1/score", openapi_extra=_schema(ScoreRequest))
    async def score(request: Request) -> JSONResponse:
        """Score samples; one outcome per sample, in order, with `payoff score`'s fields."""
        body = await read_json(request, ScoreRequest)
        if body.reward is not None and body.reward != reward.name:
            raise HTTPProblem(404, f"unknown reward {body.reward!r}: this server serves {reward.name!r}")
        samples = []
        for index, record in enumerate(body.samples):
            try:
                samples.append(Sample.from_dict(record))
            except SampleError as error:
                raise HTTPProblem(422, f"samples.{index}: {error}") from None
        outcomes = await run(samples)
        # A JSONResponse goes out as it is; a returned dict would first walk FastAPI's
        # jsonable_encoder, which costs more than scoring a math sample.
        return FastJSON({"reward": reward.name, "outcomes": [o.to_dict() for o in outcomes]})

    @app.post("/get_reward", openapi_extra=_schema(OpenRLHFRequest))
    async def get_reward(request: Request) -> JSONResponse:
        """OpenRLHF's remote reward protocol."""
        body = await read_json(request, OpenRLHFRequest)
        try:
            items = protocol_samples(body.query, body.prompts, body.labels)
        except ValueError as error:
            raise HTTPProblem(422, str(error)) from None
        samples = [item for item in items if isinstance(item, Sample)]
        return FastJSON(protocol_response(merge(items, await run(samples) if samples else [])))

    in_session = episode_routes.add_routes(app, state, read_json, HTTPProblem, FastJSON)
    nemo_gym.add_routes(app, run, lambda request: read_json(request, None), HTTPProblem, in_session, env)

    @app.get("/v1/rewards")
    async def rewards() -> dict[str, Any]:
        from payoff.registry import list_rewards

        return {"served": reward.name, "components": components, "timeout_s": state["engine"].timeout_s,
                "registered": sorted(list_rewards())}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "reward": reward.name, "queued": state["batcher"].pending}

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics.registry).decode(), media_type=CONTENT_TYPE_LATEST)

    return app


KNOWN = {"/v1/score", "/get_reward", "/v1/rewards", "/healthz", "/metrics", *episode_routes.ROUTES, *nemo_gym.ROUTES}


def _endpoint(path: str, known: set[str]) -> str:
    """The metrics label of a path: a session's id is not a label (unbounded cardinality)."""
    if path in known:
        return path
    if path.startswith("/v1/episodes/"):
        return "/v1/episodes/{session}" + ("/" + path.rsplit("/", 1)[1] if path.count("/") > 3 else "")
    return "other"
OPEN = {"/healthz", "/docs", "/openapi.json"}


class FastJSON(Response):
    """A JSON response serialised by orjson (several times faster than the standard library)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=repr)


class Guard:
    """Bearer auth and request metrics as plain ASGI: no per-request task, stream wrapper or
    thread, unlike a ``@app.middleware("http")`` function (which cost more than scoring)."""

    def __init__(self, app: Any, token: str | None, metrics: Metrics, known: set[str]) -> None:
        self.app, self.token, self.metrics, self.known = app, token, metrics, known
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began, path = time.perf_counter(), scope["path"]
        endpoint = _endpoint(path, self.known)
        status = {"code": 500}

        async def send_and_count(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        if self.expected is not None and path not in OPEN and not self._authorized(dict(scope["headers"]).get(b"authorization", b"")):
            response = JSONResponse({"error": "missing or wrong bearer token"}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send_and_count)
        else:
            await self.app(scope, receive, send_and_count)
        self.metrics.requests.labels(endpoint, str(status["code"])).inc()
        self.metrics.latency.labels(endpoint).observe(time.perf_counter() - began)

    def _authorized(self, header: bytes) -> bool:
        """``Bearer <token>``, or HTTP Basic auth whose password is the token: a client that
        cannot set headers (OpenRLHF's) sends it in the URL, ``http://payoff:<token>@host/``."""
        assert self.expected is not None
        if hmac.compare_digest(header, self.expected):
            return True
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            password = base64.b64decode(encoded, validate=True).partition(b":")[2]
        except ValueError:
            return False
        return hmac.compare_digest(password, self.token.encode())  # type: ignore[union-attr]
