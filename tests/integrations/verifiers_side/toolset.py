"""Run in the verifiers 0.4.0 venv: serve a payoff environment as a verifiers toolset the way
verifiers does for a rollout (``verifiers.v1.mcp.launch.serve``: ``python -m`` the toolset's
module in its subprocess runtime, waits for the port, probes it), call its tools over MCP's own
streamable-HTTP client, and print JSON: the tools as MCP lists them, each call's text, and
whether the episode's Python session is gone once verifiers stopped the server.

Usage: python toolset.py '{"env": "python", "params": {...}, "calls": [[tool, arguments], ...]}'
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from verifiers.v1.mcp.launch import serve

from payoff.integrations.verifiers_env import PayoffToolset, PayoffToolsetConfig


async def main(spec: dict) -> dict:
    toolset = PayoffToolset(PayoffToolsetConfig(env=spec["env"], params=spec.get("params") or {}))
    results, pid = [], None
    async with serve(toolset) as url:
        async with streamable_http_client(url) as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            listed = await session.list_tools()
            tools = [{"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in listed.tools]
            for name, arguments in spec["calls"]:
                result = await session.call_tool(name, arguments)
                text = "".join(part.text for part in result.content if getattr(part, "type", "") == "text")
                results.append({"tool": name, "text": text, "is_error": bool(result.is_error)})
            if spec["env"] == "python":
                result = await session.call_tool("python", {"code": "import os; print(os.getpid())"})
                pid = int(result.content[0].text)
    deadline = time.monotonic() + 10
    while pid is not None and os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return {"tools": tools, "results": results, "session_gone": pid is None or not os.path.exists(f"/proc/{pid}")}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
