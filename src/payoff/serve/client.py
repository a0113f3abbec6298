"""A client for `payoff serve`, with retries and backoff; `remote_reward`: a served reward
usable anywhere a local one is (the engine, a Rubric term, the trainer); and episode sessions
(`Client.open_episode`, `RemoteEpisode`, `play_remote`: `run_episode` with the environment on
the server; `play_remote_batch`: many episodes in lockstep, one request per turn for all, on one server or
spread over several)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from payoff.core import Outcome, Reward, Sample

RETRY_STATUSES = {429, 502, 503, 504}


class ServerError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Client:
    """``Client("http://127.0.0.1:8000").score(samples)`` -> list of Outcome.

    Connection errors and 429/502/503/504 are retried ``retries`` times with exponential backoff
    (honouring ``Retry-After``); other 4xx are raised at once as `ServerError` with the server's
    message."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 60.0, retries: int = 5, backoff: float = 0.2) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.retries, self.backoff = retries, backoff
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, idempotent: bool = True, **kwargs: Any) -> Any:
        """``idempotent=False`` (an episode step): a request lost in transit is not sent again,
        since the server may have run it; a 503 or 429 (refused before running) still is."""
        import httpx

        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as error:
                if attempt == self.retries or not idempotent:
                    raise ServerError(0, f"cannot reach {self.url}: {error}") from error
            else:
                if response.status_code < 400:
                    return _loads(response)
                if response.status_code not in RETRY_STATUSES or attempt == self.retries:
                    try:
                        message = response.json().get("error", response.text)
                    except ValueError:
                        message = response.text
                    raise ServerError(response.status_code, message)
                retry_after = response.headers.get("retry-after")
                if retry_after and retry_after.isdigit():
                    delay = max(delay, float(retry_after))
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def score(self, samples: Sequence[Sample | dict[str, Any]], reward: str | None = None) -> list[Outcome]:
        payload = {"samples": [s.to_dict() if isinstance(s, Sample) else s for s in samples]}
        if reward is not None:
            payload["reward"] = reward
        body = self._request("POST", "/v1/score", json=payload)
        return [Outcome(score=o.get("reward"), status=o["status"], components=o.get("components") or {}, info=o.get("info") or {})
                for o in body["outcomes"]]

    def open_episode(self, env: str, row: dict[str, Any], limits: dict[str, Any] | None = None,
                     reward: str | None = None) -> RemoteEpisode:
        """An episode session of `env` on the task `row` (503 when the server is full: retried)."""
        body: dict[str, Any] = {"env": env, "row": row}
        if limits is not None:
            body["limits"] = limits
        if reward is not None:
            body["reward"] = reward
        return RemoteEpisode(self, self._request("POST", "/v1/episodes", json=body))

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/healthz")

    def rewards(self) -> dict[str, Any]:
        return self._request("GET", "/v1/rewards")


class RemoteEpisode:
    """One episode session on the server: `messages` and `tools` as the environment opened it;
    `step(message)` -> the environment's messages (``ended`` says when and why it ended);
    `score()` -> the Outcome (``messages`` then holds the finished episode); `close()`."""

    def __init__(self, client: Client, opened: dict[str, Any]) -> None:
        self.client, self.id = client, opened["session"]
        self.messages: list[dict[str, Any]] = list(opened["messages"])
        self.tools: list[dict[str, Any]] = opened["tools"]
        self.ended: str | None = opened["ended"]
        self.closed = False

    def step(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        answer = self.client._request("POST", f"/v1/episodes/{self.id}/step", idempotent=False, json={"message": message})
        self.messages += [{"role": "assistant", **message}, *answer["messages"]]
        self.ended = answer["ended"]
        return answer["messages"]

    def score(self, close: bool = False) -> Outcome:
        """The Outcome; with `close`, the server closes the session in the same request."""
        body = self.client._request("POST", f"/v1/episodes/{self.id}/score", idempotent=False, params={"close": "true"} if close else None)
        self.closed = self.closed or close
        if body.get("messages") is not None:
            self.messages = body["messages"]
        return _outcome(body)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.client._request("DELETE", f"/v1/episodes/{self.id}")
        except ServerError as error:
            if error.status not in (404, 410):  # already gone: closed is closed
                raise

    def __enter__(self) -> RemoteEpisode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def play_remote(client: Client, env: str, policy: Any, row: dict[str, Any], limits: dict[str, Any] | None = None,
                reward: str | None = None) -> tuple[list[dict[str, Any]], Outcome]:
    """`run_episode` with the environment on the server: the policy (``(messages, tools) ->
    assistant message``) runs here. A policy that raises gives the error Outcome `run_episode`
    gives. Returns the finished episode's messages and its Outcome; the session is closed."""
    with client.open_episode(env, row, limits, reward) as episode:
        while episode.ended is None:
            try:
                message = dict(policy(episode.messages, episode.tools))
            except Exception as error:  # noqa: BLE001 - as run_episode: the policy's failure is the outcome
                return episode.messages, Outcome.error(f"policy failed: {type(error).__name__}: {error}")
            episode.step(message)
        return episode.messages, episode.score(close=True)


def _loads(response: Any) -> Any:
    """The response's JSON, read by orjson when it is installed (payoff[serve] pins it; several
    times faster than the standard library on a batch of episodes). Bodies are still written by
    the standard library: orjson would write a NaN in a task row as null, silently."""
    try:
        import orjson
    except ImportError:
        return response.json()
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:  # NaN or Infinity, which the standard library reads
        return response.json()


def _outcome(body: dict[str, Any]) -> Outcome:
    return Outcome(score=body.get("reward"), status=body["status"], components=body.get("components") or {}, info=body.get("info") or {})


def _batch(client: Client, route: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    return client._request("POST", f"/v1/batch/episodes/{route}", idempotent=route == "open", json=body)["results"]


def play_remote_batch(client: Client | Sequence[Client], env: str, policy: Any, rows: list[dict[str, Any]],
                      limits: dict[str, Any] | None = None, reward: str | None = None) -> list[tuple[list[dict[str, Any]], Outcome]]:
    """`play_remote` for many rows at once, in lockstep: one request opens them all, one request
    per turn steps every episode still running, one scores and closes them. The policy is asked
    per episode, as in `run_episode`. Opens refused because the server is full (503) are retried
    as the client retries; any other failed item raises `ServerError` (the opened sessions are
    closed first).

    Several clients (one per server process: one process steps its sessions under one
    interpreter lock, docs/serve.md): the rows are split into as many contiguous parts, each
    played on its server from a thread of its own, so the policy must be safe to call from
    several threads; the answers come back in the rows' order. A part that fails raises once
    every part has finished (each closes its own sessions)."""
    if not isinstance(client, Client):
        return _spread(list(client), env, policy, rows, limits, reward)
    spec = {"env": env, **({"limits": limits} if limits is not None else {}), **({"reward": reward} if reward is not None else {})}
    opened: list[dict[str, Any] | None] = [None] * len(rows)
    delay = client.backoff
    for attempt in range(client.retries + 1):
        wanted = [i for i, item in enumerate(opened) if item is None or "error" in item]
        for index, item in zip(wanted, _batch(client, "open", {"episodes": [{**spec, "row": rows[i]} for i in wanted]})):
            opened[index] = item
        refused = [item for item in opened if item is not None and item.get("status") == 503]
        if not refused or attempt == client.retries:
            break
        time.sleep(max(delay, float(refused[0].get("retry_after") or 0)))
        delay *= 2
    episodes = [RemoteEpisode(client, item) if item is not None and "error" not in item else None for item in opened]
    failed = next((item for item in opened if item is not None and "error" in item), None)
    results: list[Outcome | None] = [None] * len(rows)
    try:
        if failed is not None:
            raise ServerError(failed["status"], failed["error"])
        while True:
            live = [(i, e) for i, e in enumerate(episodes) if e is not None and e.ended is None and results[i] is None]
            if not live:
                break
            steps = []
            for index, episode in live:
                try:
                    steps.append((index, episode, dict(policy(episode.messages, episode.tools))))
                except Exception as error:  # noqa: BLE001 - as run_episode: the policy's failure is the outcome
                    results[index] = Outcome.error(f"policy failed: {type(error).__name__}: {error}")
            answers = _batch(client, "step", {"steps": [{"session": e.id, "message": m} for _, e, m in steps]})
            for (_, episode, message), answer in zip(steps, answers):
                if "error" in answer:
                    raise ServerError(answer["status"], answer["error"])
                episode.messages += [{"role": "assistant", **message}, *answer["messages"]]
                episode.ended = answer["ended"]
        scoring = [(i, e) for i, e in enumerate(episodes) if e is not None and results[i] is None]
        for (index, episode), body in zip(scoring, _batch(client, "score", {"sessions": [e.id for _, e in scoring], "close": True})):
            if "error" in body:
                raise ServerError(body["status"], body["error"])
            episode.closed = True
            episode.messages = body.get("messages") or episode.messages
            results[index] = _outcome(body)
    finally:
        for episode in episodes:
            if episode is not None:
                episode.close()
    return [(e.messages if e is not None else [], o) for e, o in zip(episodes, results)]  # type: ignore[misc]


def _spread(clients: list[Client], env: str, policy: Any, rows: list[dict[str, Any]], limits: dict[str, Any] | None,
            reward: str | None) -> list[tuple[list[dict[str, Any]], Outcome]]:
    if not clients:
        raise ValueError("play_remote_batch: no clients given")
    size = -(-len(rows) // len(clients))
    parts = [(c, part) for k, c in enumerate(clients) if (part := rows[k * size:(k + 1) * size])]
    if len(parts) <= 1:
        return play_remote_batch(clients[0], env, policy, rows, limits, reward)
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="payoff-remote-part") as pool:
        futures = [pool.submit(play_remote_batch, c, env, policy, part, limits, reward) for c, part in parts]
        wait(futures)
    return [played for future in futures for played in future.result()]


class _RemoteScorer:
    """Picklable (url and options only), so engine workers can each open their own client."""

    def __init__(self, url: str, token: str | None, timeout_s: float) -> None:
        self.url, self.token, self.timeout_s = url, token, timeout_s
        self._client: Client | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "token": self.token, "timeout_s": self.timeout_s, "_client": None}

    def __call__(self, sample: Sample) -> Outcome:
        if self._client is None:
            self._client = Client(self.url, self.token, self.timeout_s)
        return self._client.score([sample])[0]


def remote_reward(url: str, token: str | None = None, timeout_s: float = 60.0, name: str | None = None) -> Reward:
    """A Reward that scores each sample on the server at ``url``; ``timeout_s`` bounds each HTTP
    request (the engine's deadline is 5 s longer, so a slow server reads as the client's error)."""
    return Reward(_RemoteScorer(url, token, timeout_s), name=name or f"remote:{url}", timeout_s=timeout_s + 5)
