"""Episode sessions on a Ray cluster, with the API of `payoff.serve.sessions.Sessions`.

Each Ray actor holds a local `Sessions` (its environments, their processes, its TTL reaper) on
its node; `RaySessions` opens each new session on the actor holding the fewest and routes every
later call by the session id, which names its actor (``"<actor>.<id>"``). The cap on open
sessions is split evenly over the actors; an open refused by a full actor is tried on the
others before it is a `SessionsFull`. A `SessionError` raised in an actor is raised here as
itself, so the server answers as it does for local sessions. An actor lost with its node turns
its sessions into `ExpiredSession` errors that say so.
"""

from __future__ import annotations

import os
from typing import Any

from payoff.envs.runner import EpisodeLimits
from payoff.serve.session_errors import ExpiredSession, SessionError, SessionsFull, UnknownSession
from payoff.serve.sessions import Sessions


class RaySessions:
    """``RaySessions(actors=4, max_sessions=1024, ttl_s=600)``; ``address`` joins an existing
    cluster, None starts or reuses a local one (as `RayEngine`)."""

    def __init__(self, *, actors: int | None = None, max_sessions: int = 256, ttl_s: float = 600.0,
                 limits: EpisodeLimits | None = None, envs: dict[str, dict[str, Any]] | None = None,
                 address: str | None = None, reap_every_s: float | None = None) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                     **({} if address else {"num_cpus": os.cpu_count() or 1}))
        count = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        per_actor = max(1, -(-max_sessions // count))
        # num_cpus=0: an actor mostly waits on its clients; the environments' work is theirs to size.
        remote = ray.remote(num_cpus=0)(Sessions)
        self._actors = [remote.remote(max_sessions=per_actor, ttl_s=ttl_s, limits=limits, envs=envs, reap_every_s=reap_every_s)
                        for _ in range(count)]
        self.max_sessions, self.ttl_s, self.envs = per_actor * count, ttl_s, envs
        self._opened = [0] * count  # sessions opened per actor, for placement

    def _call(self, actor: int, method: str, *args: Any) -> Any:
        import ray

        try:
            return ray.get(getattr(self._actors[actor], method).remote(*args))
        except ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, SessionError):
                raise error.cause from None
            raise
        except ray.exceptions.RayActorError as error:
            raise ExpiredSession(f"the Ray actor holding this session is gone: {error!r}"[:500]) from None

    def _route(self, session_id: Any) -> tuple[int, str]:
        head, _, rest = session_id.partition(".") if isinstance(session_id, str) else ("", "", "")
        if not head.isdigit() or int(head) >= len(self._actors) or not rest:
            raise UnknownSession(f"unknown session {session_id!r}")
        return int(head), rest

    def open(self, env: str, row: Any, limits: dict[str, Any] | None = None, reward: str | None = None) -> dict[str, Any]:
        order = sorted(range(len(self._actors)), key=lambda index: self._opened[index])
        for index in order:
            try:
                opened = self._call(index, "open", env, row, limits, reward)
            except SessionsFull:
                continue
            self._opened[index] += 1
            return {**opened, "session": f"{index}.{opened['session']}"}
        raise SessionsFull(f"{self.max_sessions} sessions are open on {len(self._actors)} Ray actors; close one or retry later",
                           retry_after=1)

    def step(self, session_id: str, message: Any) -> dict[str, Any]:
        actor, local = self._route(session_id)
        return self._call(actor, "step", local, message)

    def score(self, session_id: str, close: bool = False) -> dict[str, Any]:
        actor, local = self._route(session_id)
        return self._call(actor, "score", local, close)

    def close(self, session_id: str) -> dict[str, Any]:
        actor, local = self._route(session_id)
        return {**self._call(actor, "close", local), "session": session_id}

    def stats(self) -> dict[str, Any]:
        import ray

        each = ray.get([actor.stats.remote() for actor in self._actors])
        return {"open": sum(s["open"] for s in each), "kept": sum(s["kept"] for s in each), "max_sessions": self.max_sessions,
                "ttl_s": self.ttl_s, "actors": len(each)}

    def reap(self) -> list[str]:
        import ray

        reaped = ray.get([actor.reap.remote() for actor in self._actors])
        return [f"{index}.{local}" for index, ids in enumerate(reaped) for local in ids]

    def shutdown(self) -> None:
        import ray

        for actor in self._actors:
            try:
                ray.get(actor.shutdown.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - already gone
                pass
            ray.kill(actor)
        self._actors = []
