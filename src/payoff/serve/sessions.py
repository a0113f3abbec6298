"""Episode sessions: a payoff environment played one policy turn per request, for a trainer that
runs its model elsewhere (`payoff serve`'s ``/v1/episodes`` routes, NeMo-Gym's multi-turn
resources-server routes).

A session is one `payoff.envs.runner.Episode` (the state `run_episode`'s loop keeps), so an
episode played through a session ends, and is scored, exactly as `run_episode` plays it in
process: the same limits, the same failures as ``error`` outcomes, the same Outcome.

- `open(env, row, limits, reward)`: a fresh environment, reset on the task row -> the session
  id, the opening messages, the tool schemas and ``ended`` (a limit reached at once, or
  ``"error"`` when the reset failed: the episode is then scored as an error, as in process).
- `step(id, message)`: one assistant message -> the environment's messages, ``done`` and
  ``ended`` (``"done"``, the limit reached, or ``"error"``).
- `score(id, close)`: the Outcome (``reward``, ``status``, ``components``, ``info``) and the
  episode's messages; the environment is closed then (with `close`, the session too). Scoring
  again returns the same; scoring an episode that has not ended stops it there
  (``info["ended"]`` is ``"stopped"``).
- `close(id)`: forget the session, closing its environment if it still runs.

Each session has a TTL, renewed by every call: a client that disappears has its session reaped
and its environment closed (the Python environment's sandboxed process killed) by a background
thread. At most ``max_sessions`` environments are held at once; past that, `open` raises
`SessionsFull` (HTTP 503 with Retry-After). Scored sessions hold no environment and do not count.
Every method blocks (environments start processes, tools take time): the server calls them off
its event loop. Errors are `SessionError`s that carry their HTTP status; nothing a client sends
takes the server down.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any

from payoff.core import Outcome
from payoff.envs.runner import Episode, EpisodeLimits
from payoff.serve.fan_out import quick_then_fan
from payoff.serve.session_errors import (
    BadRequest,
    Busy,
    EnvironmentFailed,
    ExpiredSession,
    SessionError,
    SessionsFull,
    UnknownSession,
    check_message,
)

LIMIT_FIELDS = ("max_turns", "max_tool_calls", "max_tokens", "wall_s")
TOMBSTONES = 10_000  # reaped ids remembered, so a late client hears "expired", not "unknown"


@dataclass
class Session:
    id: str
    env: str
    episode: Episode
    expires: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    scored: bool = False  # counted in `Sessions._scored` (its episode finished while it was held)


class Sessions:
    """The sessions of one server (or one Ray actor). ``envs`` maps each environment served to
    its construction parameters (default: every registered environment, built with none):
    clients name an environment, never its parameters. ``limits`` is the ceiling: a client may
    ask for tighter limits, not looser. A client may name a registered reward by name (never a
    file or module reference: that would run code the operator did not choose). ``scoring``
    (``(reward, samples) -> outcomes`` with ``takes(reward)``: `payoff.serve.episode_scoring`)
    scores finished episodes many at once (`score_many`)."""

    def __init__(self, *, max_sessions: int = 256, ttl_s: float = 600.0, limits: EpisodeLimits | None = None,
                 envs: dict[str, dict[str, Any]] | None = None, reap_every_s: float | None = None,
                 scoring: Any = None) -> None:
        if max_sessions < 1 or ttl_s <= 0:
            raise ValueError("max_sessions must be >= 1 and ttl_s > 0")
        self.max_sessions, self.ttl_s = max_sessions, ttl_s
        self.limits = limits or EpisodeLimits()
        self.envs = envs
        self.scoring = scoring
        self._sessions: dict[str, Session] = {}
        self._gone: OrderedDict[str, str] = OrderedDict()  # id -> why it is gone
        self._reserved = 0  # slots taken by opens still starting their environment
        # Held sessions whose episode has finished (they hold no environment): the live count is
        # len(_sessions) - _scored, kept as a count so that an open does not walk every session.
        self._scored = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, args=(reap_every_s or min(ttl_s / 4, 1.0),),
                                        daemon=True, name="payoff-session-reaper")
        self._reaper.start()

    # -- the API ---------------------------------------------------------------------------

    def open(self, env: str, row: Any, limits: dict[str, Any] | None = None, reward: str | None = None) -> dict[str, Any]:
        from payoff.envs import ENVS, get_env

        served = self.envs if self.envs is not None else ENVS  # None: every registered one, with no options
        if not isinstance(env, str) or env not in served:
            raise BadRequest(f"env: unknown environment {env!r}; served: {', '.join(sorted(served))}")
        if not isinstance(row, dict):
            raise BadRequest(f"row: the task row must be an object, got {type(row).__name__}")
        episode_limits = self._limits(limits)
        self._reserve()
        try:
            try:
                environment = get_env(env, reward=self._reward(reward), **(self.envs[env] if self.envs is not None else {}))
            except SessionError:
                raise
            except Exception as error:  # noqa: BLE001 - the operator's environment, not the client's request
                raise EnvironmentFailed(f"environment {env!r} could not be built: {type(error).__name__}: {error}") from None
            episode = Episode(environment, row, episode_limits)
            episode.open()  # a reset that fails ends the episode as an error, scored as in process
            session = Session(secrets.token_urlsafe(16), env, episode, time.monotonic() + self.ttl_s)
            with self._lock:
                self._sessions[session.id] = session
        finally:
            with self._lock:
                self._reserved -= 1
        if episode.ended is not None and episode.failure is not None:
            episode.finish()  # nothing left to play: release what the reset may have started
            self._count_scored(session)
        return {"session": session.id, "env": env, "messages": episode.messages, "tools": episode.tools,
                "ended": episode.ended, "ttl_s": self.ttl_s}

    def step(self, session_id: str, message: Any) -> dict[str, Any]:
        message = check_message(message)
        with self._hold(session_id) as session:
            episode = session.episode
            if episode.result is not None:
                raise Busy("the episode has been scored; open a new session")
            if episode.ended is not None:
                raise Busy(f"the episode has ended ({episode.ended}); score it")
            replies = episode.step(message)
            answer = {"messages": replies, "done": episode.ended is not None, "ended": episode.ended}
            if episode.failure is not None:
                answer["error"] = episode.failure
                episode.finish()  # the environment failed: release it now, the outcome is already an error
                self._count_scored(session)
            return answer

    def score(self, session_id: str, close: bool = False) -> dict[str, Any]:
        """The Outcome; with `close`, the session is closed too (one request fewer an episode)."""
        result = self.score_many([session_id], close)[0]
        if isinstance(result, SessionError):
            raise result
        return result

    def score_many(self, session_ids: Sequence[Any], close: bool = False,
                   fan: Executor | None = None) -> list[dict[str, Any] | SessionError]:
        """`score` for many sessions at once: each one's answer, or its SessionError. The episodes
        whose reward is still to be called are scored together through `scoring`, one call per
        reward (on the server: its engine's workers, another core than the sessions' and the
        engine's time limit); the others each by its own reward, as `run_episode` does, in
        parallel on `fan` once one of them is slow (an LLM judge, a reward model)."""
        held: list[Sessions._Held | SessionError] = []
        for session_id in session_ids:
            try:
                held.append(self._hold(session_id))
            except SessionError as error:
                held.append(error)
        results: list[dict[str, Any] | SessionError] = []
        try:
            together: dict[int, list[int]] = {}  # id(reward) -> the items it scores
            for index, item in enumerate(held):
                if isinstance(item, Sessions._Held):
                    episode = item.session.episode
                    if episode.result is None and episode.ended is None:
                        episode.ended = "stopped"  # the client stops the episode here
                    try:
                        if episode.result is None and self._together(episode):
                            together.setdefault(id(episode.scorer), []).append(index)
                    except Exception:  # noqa: BLE001 - `finish` meets the same failure, closes the environment and says so
                        pass
            scored: dict[int, Outcome] = {}
            for indices in together.values():
                episodes = [held[i].session.episode for i in indices]  # type: ignore[union-attr]
                scored.update(zip(indices, self._score_together(episodes[0].scorer, [e.to_score() for e in episodes])))

            def finish(index: int) -> dict[str, Any] | SessionError:
                item = held[index]
                if isinstance(item, SessionError):
                    return item
                sample, outcome = item.session.episode.finish(scored.get(index))
                self._count_scored(item.session)
                messages = sample.messages if sample.messages is not None else sample.meta.get("messages")
                return {**outcome.to_dict(), "messages": messages}

            results = quick_then_fan(finish, len(held), fan)
        finally:
            for item in held:
                if isinstance(item, Sessions._Held):
                    item.__exit__(None, None, None)
        if close:
            for index, result in enumerate(results):
                if not isinstance(result, SessionError):
                    try:
                        self.close(session_ids[index])
                    except SessionError as error:  # closed by another request meanwhile
                        results[index] = error
        return results

    def _together(self, episode: Episode) -> bool:
        """Whether `scoring` gives this finished episode's reward outcome (else `finish` does)."""
        return self.scoring is not None and self.scoring.takes(episode.scorer) and episode.to_score() is not None

    def _score_together(self, scorer: Any, samples: list[Any]) -> list[Outcome]:
        try:
            outcomes = list(self.scoring(scorer, samples))  # type: ignore[misc]
            if len(outcomes) != len(samples):
                raise RuntimeError(f"{len(outcomes)} outcomes for {len(samples)} episodes")
        except Exception as error:  # noqa: BLE001 - each episode still gets its outcome, an error that says why
            failed = f"reward {getattr(scorer, 'name', scorer)!r} failed: {type(error).__name__}: {error}"
            return [Outcome.error(failed) for _ in samples]
        for outcome in outcomes:
            outcome.info.pop("elapsed_s", None)  # the engine's timing: the Outcome is run_episode's
        return outcomes

    def close(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            session = self._sessions.pop(session_id, None)
            if session is None:
                raise self._missing(session_id)
            self._uncount(session)
            self._forget(session_id, "closed")
        self._release(session)
        return {"session": session_id, "closed": True}

    def stats(self) -> dict[str, Any]:
        with self._lock:
            live = len(self._sessions) - self._scored
            return {"open": live, "kept": len(self._sessions), "max_sessions": self.max_sessions, "ttl_s": self.ttl_s}

    def reap(self) -> list[str]:
        """Close the sessions past their TTL (not one in the middle of a call); their ids."""
        now = time.monotonic()
        with self._lock:
            expired = [s for s in self._sessions.values() if s.expires < now and not s.lock.locked()]
            for session in expired:
                del self._sessions[session.id]
                self._uncount(session)
                self._forget(session.id, "expired: no request within its TTL")
        for session in expired:
            self._release(session)
        return [s.id for s in expired]

    def shutdown(self) -> None:
        self._stop.set()
        with self._lock:
            sessions, self._sessions, self._scored = list(self._sessions.values()), {}, 0
        for session in sessions:
            self._release(session)

    # -- the parts -------------------------------------------------------------------------

    def _limits(self, asked: dict[str, Any] | None) -> EpisodeLimits:
        if asked is None:
            return self.limits
        if not isinstance(asked, dict):
            raise BadRequest(f"limits: an object, got {type(asked).__name__}")
        tighter: dict[str, Any] = {}
        for key, value in asked.items():
            if key not in LIMIT_FIELDS:
                raise BadRequest(f"limits.{key}: unknown limit; the limits are {', '.join(LIMIT_FIELDS)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise BadRequest(f"limits.{key}: a positive number, got {value!r}")
            ceiling = getattr(self.limits, key)
            tighter[key] = min(type(ceiling)(value), ceiling)
        return replace(self.limits, **tighter)

    @staticmethod
    def _reward(name: Any) -> Any:
        if name is None:
            return None
        from payoff.registry import list_rewards

        known = list_rewards()
        if not isinstance(name, str) or name not in known:
            raise BadRequest(f"reward: {name!r} is not a registered reward name")
        return known[name]

    def _reserve(self) -> None:
        for attempt in (0, 1):
            with self._lock:
                live = len(self._sessions) - self._scored + self._reserved
                if live < self.max_sessions:
                    self._reserved += 1
                    return
            if attempt == 0:
                self.reap()  # a full server first reclaims what is past its TTL
        raise SessionsFull(f"{self.max_sessions} sessions are open; close one or retry later", retry_after=1)

    class _Held:
        def __init__(self, owner: Sessions, session: Session) -> None:
            self.owner, self.session = owner, session

        def __enter__(self) -> Session:
            return self.session

        def __exit__(self, *exc: object) -> None:
            self.session.expires = time.monotonic() + self.owner.ttl_s
            self.session.lock.release()

    def _hold(self, session_id: str) -> Sessions._Held:
        """The session, locked for one call: a second call on it meanwhile is a 409."""
        with self._lock:
            session = self._sessions.get(session_id) if isinstance(session_id, str) else None
            if session is None:
                raise self._missing(session_id)
            if not session.lock.acquire(blocking=False):
                raise Busy("another request on this session is still running")
            session.expires = time.monotonic() + self.ttl_s
        return Sessions._Held(self, session)

    def _count_scored(self, session: Session) -> None:
        """A held session's episode has finished: it no longer counts against the cap."""
        with self._lock:
            if not session.scored and self._sessions.get(session.id) is session:
                session.scored = True
                self._scored += 1

    def _uncount(self, session: Session) -> None:
        """Under ``_lock``, as `session` leaves ``_sessions``."""
        if session.scored:
            self._scored -= 1

    def _missing(self, session_id: Any) -> SessionError:
        why = self._gone.get(session_id) if isinstance(session_id, str) else None
        if why is not None:
            return ExpiredSession(f"session {session_id}: {why}")
        return UnknownSession(f"unknown session {session_id!r}")

    def _forget(self, session_id: str, why: str) -> None:
        self._gone[session_id] = why
        while len(self._gone) > TOMBSTONES:
            self._gone.popitem(last=False)

    @staticmethod
    def _release(session: Session) -> None:
        if session.episode.result is None:
            try:
                session.episode.env.close()
            except Exception:  # noqa: BLE001 - the session is gone either way; nobody is left to tell
                pass

    def _reap_loop(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                self.reap()
            except Exception:  # noqa: BLE001 - a reaper that dies would leak every later session
                pass
