#!/usr/bin/env python3
"""Run the real kagent engine (kagent-adk 0.10.4) locally, with no Kubernetes and no controller.

Its one job: load an AgentConfig JSON and an A2A AgentCard JSON, build kagent's A2A app with
``KAgentApp(...).build(local=True)`` (in-memory sessions and tasks) and serve it with uvicorn.

This is the code path of ``kagent-adk static`` minus the parts that need a kagent controller
(``KAGENT_URL``, remote session/task stores, STS token service, tracing setup).

Usage (with the venv built from python/requirements.lock)::

    OPENAI_API_KEY=dummy VENV/bin/python python/kagent_local.py \\
        --config config.json --card agent-card.json \\
        --port 8083 --app-name kagent__NS__dba_assistant

Arguments:
    --config PATH    kagent AgentConfig JSON, as the kagent controller writes it to
                     /config/config.json (model, description, instruction, http_tools, ...,
                     stream). Validated with ``kagent.adk.types.AgentConfig``.
    --card PATH      A2A AgentCard JSON (a2a-sdk 0.3 schema), validated with
                     ``a2a.types.AgentCard``; served at /.well-known/agent-card.json.
    --host HOST      bind address (default 127.0.0.1).
    --port PORT      bind port (required).
    --app-name NAME  ``<namespace>__NS__<name>`` with '-' replaced by '_', e.g.
                     ``kagent__NS__dba_assistant``. The part after ``__NS__`` is the ADK agent
                     name (what kagent's controller passes as KAGENT_NAME).
    --log-level LVL  debug|info|warning|error (default: $LOG_LEVEL or info).

What it serves (A2A v0.3 JSON-RPC, as kagent does in-cluster):
    POST /                              message/send, message/stream, tasks/get, ...
    GET  /.well-known/agent-card.json   the card given with --card
    GET  /health                        "OK" once the app is up (poll it for readiness)

Environment:
    OPENAI_API_KEY  must be set (any value, e.g. a dummy for a local scripted model) when the
                    model type is "openai" without api_key_passthrough: the OpenAI client reads
                    it at the first model call and fails with "Missing credentials" otherwise.
                    This launcher refuses to start without it. It sets no secrets itself.
    OPENAI_BASE_URL used by the OpenAI client only when the config's model has no base_url.
    A2A_MAX_CONTENT_LENGTH  optional request size limit (kagent default: 10 MiB).

All logging goes to stderr (uvicorn's access log included); stdout stays empty.
Exit status: 2 on bad arguments/config/card (including a missing OPENAI_API_KEY), 1 if the app
cannot be built or the port cannot be bound. Shutdown: SIGINT exits 0; on SIGTERM uvicorn shuts
down gracefully (open streams get up to 5 s) and then re-raises SIGTERM, so the process ends
killed by SIGTERM (shell status 143). Both are normal stops.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn

log = logging.getLogger("kagent_local")

# <namespace>__NS__<name>, both parts already '-' -> '_' (kagent.core.KAgentConfig.app_name).
APP_NAME_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)__NS__([A-Za-z_][A-Za-z0-9_]*)$")

# KAgentApp wants a controller URL; build(local=True) never uses it.
UNUSED_KAGENT_URL = "http://127.0.0.1:0/kagent-controller-unused-in-local-mode"

# Seconds uvicorn waits for open connections (e.g. an SSE stream) on SIGTERM before closing them.
GRACEFUL_SHUTDOWN_S = 5


def die(msg: str, code: int = 2) -> NoReturn:
    log.error("%s", msg)
    sys.exit(code)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="kagent_local.py",
        description="Serve a kagent AgentConfig as an A2A agent with kagent-adk's in-memory local mode.",
    )
    p.add_argument("--config", required=True, type=Path, help="kagent AgentConfig JSON (config.json)")
    p.add_argument("--card", required=True, type=Path, help="A2A AgentCard JSON (agent-card.json)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    p.add_argument("--port", required=True, type=int, help="bind port")
    p.add_argument("--app-name", required=True, help="<namespace>__NS__<name>, '-' replaced by '_'")
    p.add_argument(
        "--log-level",
        default=os.getenv("LOG_LEVEL", "info").lower(),
        choices=["debug", "info", "warning", "error"],
        help="log level (default: $LOG_LEVEL or info)",
    )
    return p.parse_args(argv)


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        die(f"cannot read {what} {path}: {e.strerror or e}")
    except json.JSONDecodeError as e:
        die(f"{what} {path} is not valid JSON: {e}")


def agent_name_from_app_name(app_name: str) -> str:
    m = APP_NAME_RE.match(app_name)
    if not m:
        suggestion = app_name.replace("-", "_")
        hint = f" (did you mean {suggestion!r}?)" if APP_NAME_RE.match(suggestion) else ""
        die(
            f"--app-name {app_name!r} must look like <namespace>__NS__<name> using only "
            f"letters, digits and '_' ('-' replaced by '_'), e.g. kagent__NS__dba_assistant{hint}"
        )
    return m.group(2)


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging config, with the access log moved from stdout to stderr."""
    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["handlers"]["access"]["stream"] = "ext://sys.stderr"
    cfg["handlers"]["default"]["stream"] = "ext://sys.stderr"
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s - %(name)s - %(levelname)s - %(message)s",  # kagent's format
    )
    if args.log_level != "debug":
        # google-adk flags most of what kagent uses as experimental, once per feature per process.
        warnings.filterwarnings("ignore", message=r"\[EXPERIMENTAL\]", category=UserWarning)
    if not 1 <= args.port <= 65535:
        die(f"--port {args.port} is out of range 1..65535")
    agent_name = agent_name_from_app_name(args.app_name)

    # Read both files before the slow imports (~5-10 s) so bad paths/JSON fail fast.
    raw_config = read_json(args.config, "config")
    raw_card = read_json(args.card, "agent card")

    log.info("importing kagent-adk (takes a few seconds)")
    try:
        import uvicorn
        from a2a.types import AgentCard
        from google.adk.agents import BaseAgent
        from kagent.adk import KAgentApp
        from kagent.adk.types import AgentConfig
        from pydantic import ValidationError
    except ImportError as e:
        die(
            f"cannot import kagent-adk/a2a-sdk ({e}); run this with the python of a venv built "
            "from python/requirements.lock (a2a-sdk must be 0.3.x)",
            code=1,
        )
    # Importing kagent.core resets the root log level from $LOG_LEVEL; put ours back.
    logging.getLogger().setLevel(args.log_level.upper())

    try:
        agent_config = AgentConfig.model_validate(raw_config)
    except ValidationError as e:
        die(f"config {args.config} is not a valid kagent AgentConfig:\n{e}")
    try:
        agent_card = AgentCard.model_validate(raw_card)
    except ValidationError as e:
        die(f"agent card {args.card} is not a valid A2A AgentCard:\n{e}")

    model = agent_config.model
    if model.type == "openai" and not model.api_key_passthrough and not os.environ.get("OPENAI_API_KEY"):
        die(
            "OPENAI_API_KEY is not set; kagent's OpenAI client needs it even for a local "
            "OpenAI-compatible base_url (set any dummy value for a scripted model)"
        )

    plugins = []
    if model.api_key_passthrough:
        # Same as `kagent-adk static`: forward the caller's Bearer token as the LLM API key.
        from kagent.adk._llm_passthrough_plugin import LLMPassthroughPlugin

        plugins.append(LLMPassthroughPlugin())

    def root_agent_factory() -> BaseAgent:
        # Called by kagent once per request: a fresh agent (and fresh MCP toolsets) each time.
        # No STS integration and no token propagation in local mode.
        return agent_config.to_agent(agent_name, None, False)

    # Build one agent now so config errors that pydantic cannot see (bad agent name,
    # bad model options) surface at start-up rather than on the first request.
    try:
        root_agent_factory()
    except Exception as e:  # noqa: BLE001 - report anything kagent raises as a config error
        die(f"config {args.config} was rejected by kagent while building the agent: {e}")

    for i, t in enumerate(agent_config.http_tools or []):
        log.info(
            "http_tools[%d]: url=%s tools=%s require_approval=%s allowed_headers=%s",
            i, t.params.url, t.tools or "(all)", t.require_approval or [], t.allowed_headers or [],
        )
    log.info(
        "agent %s (app %s): model type=%s model=%s base_url=%s llm_stream=%s",
        agent_name, args.app_name, model.type, model.model,
        getattr(model, "base_url", None), bool(agent_config.stream),
    )

    try:
        app = KAgentApp(
            root_agent_factory,
            agent_card,
            UNUSED_KAGENT_URL,
            args.app_name,
            plugins=plugins,
            stream=bool(agent_config.stream),  # LLM response streaming, not A2A streaming
            agent_config=agent_config,
        ).build(local=True)
    except Exception as e:  # noqa: BLE001
        die(f"kagent could not build the A2A app: {e}", code=1)

    log.info("serving A2A on http://%s:%d (health: /health)", args.host, args.port)
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            log_config=uvicorn_log_config(),
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
    except SystemExit as e:  # uvicorn exits 1 when it cannot bind
        if e.code not in (0, None):
            die(f"uvicorn could not serve on {args.host}:{args.port}", code=1)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
