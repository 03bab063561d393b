"""The agent's settings, read once from the environment (the same variables locally and in a pod).

Its one job: turn ``MODEL_*``, ``MCP_SERVERS``, ``SYSTEM_PROMPT`` and kagent's ``KAGENT_*``
variables into a checked :class:`Settings`, or fail with a message that names the variable.

    MODEL_BASE_URL   OpenAI-compatible base URL (the scripted model's ``…/v1``, OpenAI's, or
                     Anthropic's OpenAI-compatible ``https://api.anthropic.com/v1/``). Required.
    MODEL_NAME       model name sent with every request. Required.
    MODEL_API_KEY    the provider's key (any value for the scripted model). Required, unless
    MODEL_API_KEY_ENV names another variable that holds it (e.g. OPENAI_API_KEY from a Secret).
    MCP_SERVERS      JSON list, one object per MCP server (Streamable HTTP), the same fields as a
                     declarative agent's tool server:
                       {"name": "orders-db-public", "url": "http://…/public/mcp",
                        "tools": ["cluster_db_query", "truncate_table"],
                        "require_approval": ["truncate_table"],
                        "allowed_headers": ["x-user-id", "authorization"],
                        "timeout_seconds": 30}
                     ``tools`` empty or absent: every tool the server lists.
    SYSTEM_PROMPT    the system message (optional).
    KAGENT_NAME, KAGENT_NAMESPACE   the agent's name and namespace (app name
                     ``<namespace>__NS__<name>``); set by the kagent controller for BYO agents.
    KAGENT_URL       the kagent controller; set in a cluster, absent locally (local mode).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field


class SettingsError(ValueError):
    """A variable is missing or malformed; the message names it."""


@dataclass(frozen=True)
class McpServer:
    name: str
    url: str
    tools: tuple[str, ...] = ()
    require_approval: tuple[str, ...] = ()
    allowed_headers: tuple[str, ...] = ()
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class Settings:
    model_base_url: str
    model_name: str
    model_api_key: str
    servers: tuple[McpServer, ...]
    system_prompt: str = ""
    name: str = "dba-assistant-langgraph"
    namespace: str = "kagent"
    kagent_url: str | None = None
    description: str = field(
        default="Database assistant for the orders database (BYO LangGraph), with human "
        "approval on destructive tools."
    )

    @property
    def app_name(self) -> str:
        """kagent's convention: ``<namespace>__NS__<name>`` with ``-`` replaced by ``_``."""
        return f"{self.namespace}__NS__{self.name}".replace("-", "_")

    @property
    def require_approval(self) -> frozenset[str]:
        return frozenset(t for s in self.servers for t in s.require_approval)


def _required(env: dict[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is not set")
    return value


def _names(item: dict, key: str, where: str) -> tuple[str, ...]:
    value = item.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SettingsError(f"{where}.{key} must be a list of non-empty strings")
    return tuple(value)


def _server(item: object, index: int) -> McpServer:
    where = f"MCP_SERVERS[{index}]"
    if not isinstance(item, dict):
        raise SettingsError(f"{where} must be an object")
    unknown = set(item) - {"name", "url", "tools", "require_approval", "allowed_headers", "timeout_seconds"}
    if unknown:
        raise SettingsError(f"{where} has unknown field(s) {sorted(unknown)}")
    name, url = item.get("name"), item.get("url")
    if not isinstance(name, str) or not name:
        raise SettingsError(f"{where}.name must be a non-empty string")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise SettingsError(f"{where}.url must be an http(s) URL")
    tools = _names(item, "tools", where)
    approval = _names(item, "require_approval", where)
    if tools and not set(approval) <= set(tools):
        raise SettingsError(f"{where}.require_approval must be a subset of its tools")
    timeout = item.get("timeout_seconds", 30)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise SettingsError(f"{where}.timeout_seconds must be a positive number")
    headers = tuple(h.lower() for h in _names(item, "allowed_headers", where))
    return McpServer(name, url, tools, approval, headers, float(timeout))


def _api_key(env: dict[str, str]) -> str:
    if env.get("MODEL_API_KEY", "").strip():
        return env["MODEL_API_KEY"].strip()
    var = env.get("MODEL_API_KEY_ENV", "").strip()
    if not var:
        raise SettingsError("MODEL_API_KEY is not set (nor MODEL_API_KEY_ENV)")
    return _required(env, var)


def from_env(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    raw = _required(env, "MCP_SERVERS")
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as e:
        raise SettingsError(f"MCP_SERVERS is not valid JSON: {e}") from None
    if not isinstance(items, list) or not items:
        raise SettingsError("MCP_SERVERS must be a non-empty JSON list")
    servers = tuple(_server(item, i) for i, item in enumerate(items))
    if len({s.name for s in servers}) != len(servers):
        raise SettingsError("MCP_SERVERS names must be unique")
    return Settings(
        model_base_url=_required(env, "MODEL_BASE_URL"),
        model_name=_required(env, "MODEL_NAME"),
        model_api_key=_api_key(env),
        servers=servers,
        system_prompt=env.get("SYSTEM_PROMPT", ""),
        name=env.get("KAGENT_NAME") or Settings.name,
        namespace=env.get("KAGENT_NAMESPACE") or Settings.namespace,
        kagent_url=env.get("KAGENT_URL") or None,
    )
