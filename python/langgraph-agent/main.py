#!/usr/bin/env python3
"""Serve the BYO LangGraph dba-assistant over A2A with kagent-langgraph 0.10.4.

Its one job: build the A2A app around the graph (``graph.py``) and serve it with uvicorn.

Two modes:

- **in a cluster** (``KAGENT_URL`` set, as the kagent controller does for a BYO agent):
  kagent-langgraph's own ``KAgentApp(...).build()``, with tasks and LangGraph checkpoints
  stored by the controller (``KAgentCheckpointer``).
- **local** (no ``KAGENT_URL``, or ``--local``): kagent-langgraph 0.10.4 has no local mode of
  its own (``KAgentApp.build()`` always stores tasks through the controller), so this builds
  the same app from the same parts — kagent-langgraph's ``LangGraphAgentExecutor``, kagent's
  request-context builder, a2a-sdk's request handler and Starlette app, ``/health`` — with
  a2a-sdk's in-memory task store and LangGraph's in-memory checkpointer.

Either way the A2A wire is kagent's: JSON-RPC v0.3 at ``POST /``, the card at
``/.well-known/agent-card.json``, ``GET /health``; a tier-1 pause is an ``input-required`` task
with an ``adk_request_confirmation`` part, resumed by a ``decision_type`` data part.

Usage::

    MODEL_BASE_URL=http://127.0.0.1:8070/v1 MODEL_NAME=scripted MODEL_API_KEY=dummy \\
    MCP_SERVERS='[{"name": "orders-db-public", "url": "http://127.0.0.1:8080/public/mcp", …}]' \\
        VENV/bin/python python/langgraph-agent/main.py --port 8084

See ``settings.py`` for every variable. Logs go to stderr. Exit status 2 on bad settings,
1 if the app cannot be built or the port bound.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
from typing import Any, NoReturn

log = logging.getLogger("dba_langgraph")


def die(msg: str, code: int = 2) -> NoReturn:
    log.error("%s", msg)
    sys.exit(code)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="main.py", description=__doc__.split("\n")[1])
    p.add_argument("--host", default=os.getenv("HOST", "127.0.0.1"), help="bind address")
    p.add_argument("--port", type=int, default=int(os.getenv("PORT", "8080")), help="bind port")
    p.add_argument("--url", default=os.getenv("AGENT_URL"), help="the URL the card advertises")
    p.add_argument("--local", action="store_true", help="in-memory tasks and checkpoints even if KAGENT_URL is set")
    p.add_argument(
        "--log-level",
        default=os.getenv("LOG_LEVEL", "info").lower(),
        choices=["debug", "info", "warning", "error"],
    )
    return p.parse_args(argv)


class ForwardHeaders:
    """ASGI middleware: the request's headers into :data:`graph.REQUEST_HEADERS`, so the graph
    can forward each MCP server's ``allowed_headers`` (e.g. ``x-user-id``, ``authorization``).
    The agent's run is a task started inside the request, so it inherits the value."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from graph import REQUEST_HEADERS

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        token = REQUEST_HEADERS.set(headers)
        try:
            await self.app(scope, receive, send)
        finally:
            REQUEST_HEADERS.reset(token)


def card(settings: Any, url: str) -> Any:
    from a2a.types import AgentCapabilities, AgentCard, AgentSkill

    return AgentCard(
        name=settings.name.replace("-", "_"),
        description=settings.description,
        url=url,
        version="0.1.0",
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text"],
        default_output_modes=["text"],
        skills=[
            AgentSkill(
                id="orders-db",
                name="orders database",
                description="Query the orders database; truncate a table (asks you first); apply a "
                "schema migration (a platform reviewer decides).",
                tags=["database", "hitl"],
            )
        ],
    )


def local_app(graph: Any, agent_card: Any, app_name: str) -> Any:
    from a2a.server.apps import A2AStarletteApplication
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.tasks import InMemoryTaskStore
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse
    from kagent.core.a2a import KAgentRequestContextBuilder, get_a2a_max_content_length
    from kagent.langgraph import LangGraphAgentExecutor

    tasks = InMemoryTaskStore()
    handler = DefaultRequestHandler(
        agent_executor=LangGraphAgentExecutor(graph=graph, app_name=app_name),
        task_store=tasks,
        request_context_builder=KAgentRequestContextBuilder(task_store=tasks),
    )
    a2a = A2AStarletteApplication(
        agent_card=agent_card, http_handler=handler, max_content_length=get_a2a_max_content_length()
    )
    app = FastAPI(title=f"KAgent LangGraph: {app_name} (local)")
    app.add_route("/health", methods=["GET"], route=lambda _request: PlainTextResponse("OK"))
    a2a.add_routes_to_app(app)
    return app


def cluster_app(graph_for: Any, agent_card: Any, settings: Any) -> Any:
    import httpx
    from kagent.core import KAgentConfig
    from kagent.langgraph import KAgentApp, KAgentCheckpointer

    config = KAgentConfig()
    checkpointer = KAgentCheckpointer(httpx.AsyncClient(base_url=config.url), config.app_name)
    return KAgentApp(graph=graph_for(checkpointer), agent_card=agent_card, config=config).build()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s - %(name)s - %(levelname)s - %(message)s",
    )
    if not 1 <= args.port <= 65535:
        die(f"--port {args.port} is out of range 1..65535")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from settings import SettingsError, from_env

    try:
        settings = from_env()
    except SettingsError as e:
        die(f"bad settings: {e}")

    log.info("importing kagent-langgraph (takes a few seconds)")
    try:
        import uvicorn
        from langgraph.checkpoint.memory import InMemorySaver

        import graph
    except ImportError as e:
        die(f"cannot import kagent-langgraph/langgraph ({e}); use a venv built from python/requirements.lock", 1)
    logging.getLogger().setLevel(args.log_level.upper())  # kagent.core resets it on import

    url = args.url or f"http://{args.host}:{args.port}/"
    agent_card = card(settings, url)
    local = args.local or not settings.kagent_url
    for s in settings.servers:
        log.info(
            "mcp %s: url=%s tools=%s require_approval=%s allowed_headers=%s timeout=%ss",
            s.name, s.url, list(s.tools) or "(all)", list(s.require_approval), list(s.allowed_headers),
            s.timeout_seconds,
        )
    log.info(
        "agent %s (app %s, %s mode): model=%s base_url=%s",
        settings.name, settings.app_name, "local" if local else "cluster", settings.model_name,
        settings.model_base_url,
    )
    try:
        if local:
            app = local_app(graph.build(settings, InMemorySaver()), agent_card, settings.app_name)
        else:
            app = cluster_app(lambda cp: graph.build(settings, cp), agent_card, settings)
    except Exception as e:  # noqa: BLE001
        die(f"could not build the A2A app: {e}", 1)

    from uvicorn.config import LOGGING_CONFIG

    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    log_config["handlers"]["default"]["stream"] = "ext://sys.stderr"
    log.info("serving A2A on http://%s:%d (health: /health)", args.host, args.port)
    try:
        uvicorn.run(
            ForwardHeaders(app),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            log_config=log_config,
            timeout_graceful_shutdown=5,
        )
    except SystemExit as e:
        if e.code not in (0, None):
            die(f"uvicorn could not serve on {args.host}:{args.port}", 1)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
