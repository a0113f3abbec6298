"""The viewer's web app (FastAPI, served by uvicorn as `payoff serve` is): one static page
(static/index.html and its scripts, uPlot vendored beside them: nothing is fetched from the
network) over a JSON API.

``GET /api/source`` what PATH holds and how far its samples are indexed; ``/api/metrics`` the
run's curves; ``/api/samples`` a filtered page of rows and ``/api/samples/{i}`` one whole row;
``/api/group?key=`` a prompt group's members with their advantages; ``/api/disagreements``,
``/api/audit``, ``/api/eval`` and ``/api/eval/items`` the reports.

Access: on a loopback address only requests whose Host is a loopback name are served (a page
elsewhere cannot reach the viewer through DNS rebinding); bound anywhere else, every request
needs the token, given once as ``?token=`` (then kept in a cookie) or as ``Authorization: Bearer``.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from payoff.view import reports
from payoff.view.lines import SampleFile
from payoff.view.rows import Filters, group_view, matching, summary
from payoff.view.sources import Source, read_metrics, warned_steps

STATIC = Path(__file__).resolve().parent / "static"
FILES = {"app.js": "text/javascript", "views.js": "text/javascript", "render.js": "text/javascript", "app.css": "text/css",
         "uplot/uPlot.iife.min.js": "text/javascript", "uplot/uPlot.min.css": "text/css", "uplot/LICENSE": "text/plain"}
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
COOKIE = "payoff_view"
MAX_PAGE = 500


class Access:
    """Who may ask: a loopback Host, or the token (query, cookie or bearer header)."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def allowed(self, request: Request) -> bool:
        if self.token is None:
            return hostname(request.headers.get("host") or "") in LOOPBACK
        given = [request.query_params.get("token"), request.cookies.get(COOKIE)]
        header = request.headers.get("authorization") or ""
        if header.startswith("Bearer "):
            given.append(header[7:])
        return any(g and hmac.compare_digest(g.encode(), self.token.encode()) for g in given)


def hostname(header: str) -> str:
    """The host of a Host header, without its port (``[::1]:8000`` -> ``[::1]``)."""
    if header.startswith("["):
        return header[: header.find("]") + 1]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def create_app(source: Source, token: str | None = None) -> FastAPI:
    """The viewer over `source`; its samples file (if any) is indexed by a background thread from
    now on (``index`` on the app's state), and again for what is appended to it later."""
    app = FastAPI(title="payoff view", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    access = Access(token)
    index = SampleFile(source.samples).start() if source.samples else None
    metrics_cache: dict[str, Any] = {}
    app.state.index = index

    def metrics() -> dict[str, Any] | None:
        if source.metrics is None:
            return None
        stamp = source.metrics.stat().st_mtime_ns  # a run still training keeps writing it
        if metrics_cache.get("stamp") != stamp:
            metrics_cache.update(stamp=stamp, data=read_metrics(source.metrics))
        return metrics_cache["data"]

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        if not access.allowed(request):
            return JSONResponse({"error": "this viewer needs its token: open the URL `payoff view` printed"}, status_code=401)
        if token is not None and request.query_params.get("token") and request.url.path == "/":
            response: Response = RedirectResponse("/", status_code=303)  # the token leaves the address bar for a cookie
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        if index is not None:
            index.busy += 1
        try:
            return await call_next(request)
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        except (LookupError, IndexError) as error:
            return JSONResponse({"error": str(error).strip("'\"")}, status_code=404)
        finally:
            if index is not None:
                index.busy -= 1

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-store"})

    @app.get("/static/{name:path}")
    def static(name: str) -> Response:
        if name not in FILES:
            return JSONResponse({"error": f"no static file {name!r}"}, status_code=404)
        return FileResponse(STATIC / name, media_type=FILES[name])

    @app.get("/api/source")
    def describe() -> dict[str, Any]:
        if index is not None:
            index.catch_up()
        return {**source.describe(), "index": index.progress() if index else None}

    @app.get("/api/metrics")
    def curves() -> dict[str, Any]:
        data = metrics()
        if data is None:
            raise LookupError("no metrics.jsonl here")
        return data

    def need_index() -> SampleFile:
        if index is None:
            raise LookupError("no samples here")
        index.catch_up()  # rows a running trainer appended since
        return index

    @app.get("/api/samples")
    def samples(request: Request) -> dict[str, Any]:
        found = need_index()
        query = dict(request.query_params)
        filters = Filters.parse(query)
        page, size = int(query.get("page") or 0), min(int(query.get("size") or 50), MAX_PAGE)
        if page < 0 or size < 1:
            raise ValueError("page must be >= 0 and size >= 1")
        if filters.empty():  # the first page needs no pass over the index
            count = found.count
            chosen, total = list(range(page * size, min(count, (page + 1) * size))), count
        else:
            every = matching(found, filters, warned_steps(metrics()))
            chosen, total = every[page * size:(page + 1) * size], len(every)
        return {"total": total, "done": found.done, "page": page, "size": size, "components": sorted(found.components),
                "rows": [summary(i, found.row(i)) for i in chosen]}

    @app.get("/api/samples/{number}")
    def one(number: int) -> dict[str, Any]:
        row = need_index().row(number)
        step = row.get("step")
        return {"index": number, "row": row, "step_warnings": (metrics() or {}).get("warnings", {}).get(str(step), [])}

    @app.get("/api/group")
    def group(key: str) -> dict[str, Any]:
        return group_view(need_index(), key)

    @app.get("/api/disagreements")
    def disagreements() -> dict[str, Any]:
        return reports.disagreements(source)

    @app.get("/api/audit")
    def audit() -> dict[str, Any]:
        return reports.audit(source)

    @app.get("/api/eval")
    def evals() -> dict[str, Any]:
        return reports.evals(source)

    @app.get("/api/eval/items")
    def eval_items(report: int, subset: str | None = None, wrong: bool = True, page: int = 0, size: int = 50) -> dict[str, Any]:
        return reports.eval_items(source, report, subset, wrong, max(page, 0), min(max(size, 1), MAX_PAGE))

    return app
