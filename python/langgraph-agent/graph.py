"""The dba-assistant as a LangGraph graph: a model node and a tools node, in a loop.

Its one job is the graph. The tools come from the MCP servers (through the gateway) via
langchain-mcp-adapters, opened per step with the caller's forwarded headers (see
:data:`REQUEST_HEADERS`). Two kinds of calls pause the graph with ``interrupt()`` before
anything runs, in the shape kagent-langgraph turns into kagent's ``adk_request_confirmation``
card:

- a tool in ``require_approval`` (tier 1): ``{"action_requests": [{"name", "args", "id"}]}``;
  the resume value is ``{"decision_type": "approve" | "reject" | "batch", "decisions": …,
  "rejection_reasons": …}``. A rejected call does not run; the model gets
  ``Tool call was rejected by user. Reason: <reason>`` as its result (kagent-adk's words).
- ``ask_user`` (kagent-adk's built-in question tool, same schema): the resume value carries
  ``ask_user_answers``; the model gets ``[{"question", "answer"}]`` as JSON, as from kagent-adk.

Everything that can pause runs before anything that acts, so a resumed step (LangGraph reruns
the node from its start) never runs a tool twice. A decision that is missing or not
understood rejects (fail closed).

An MCP result reaches the model and the A2A stream as the MCP ``CallToolResult`` JSON
(``{"content": […], "isError": …}``): kagent-langgraph 0.10.4 reports a tool result only by its
content, so the error flag has to travel inside it.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import timedelta
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, SystemMessage, ToolMessage
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import interrupt

from settings import Settings

log = logging.getLogger("dba_langgraph.graph")

#: The A2A request's headers (lower-case names), set per request by the server's middleware.
#: Only each server's ``allowed_headers`` are forwarded to it.
REQUEST_HEADERS: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar(
    "request_headers", default={}
)

ASK_USER = "ask_user"
REJECTED = "Tool call was rejected by user."
NOT_RUN = "Tool call was not run: the conversation moved on before it was decided."

#: kagent-adk 0.10.4's built-in ``ask_user`` tool, as offered to the model.
ASK_USER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": ASK_USER,
        "description": (
            "Ask the user at least one question and wait for their answers before continuing. "
            "Every question must include non-empty text. Use this when you need clarifying "
            "information, preferences, or explicit confirmation from the user."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "questions": {
                    "type": "array",
                    "description": "List of questions to ask the user.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "question": {
                                "type": "string",
                                "description": "The question text to display to the user.",
                            },
                            "choices": {
                                "type": "array",
                                "items": {"type": "string"},
                                "description": "Predefined answer choices shown as selectable "
                                "chips. Leave empty for a free-text-only question.",
                            },
                            "multiple": {
                                "type": "boolean",
                                "description": "If true, the user can select multiple choices. "
                                "Defaults to false (single-select).",
                            },
                        },
                        "required": ["question"],
                    },
                }
            },
            "required": ["questions"],
        },
    },
}


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class Toolbox:
    """The MCP servers, opened with the current request's forwarded headers."""

    def __init__(self, settings: Settings):
        self.settings = settings
        # Each server's tools as last listed: a server that cannot list them now (a gated
        # route fails closed while its gate restarts) keeps offering what it offered.
        self.known: dict[str, list[Any]] = {}

    def client(self) -> MultiServerMCPClient:
        headers = REQUEST_HEADERS.get()
        connections: dict[str, Any] = {}
        for s in self.settings.servers:
            forwarded = {h: headers[h] for h in s.allowed_headers if h in headers}
            connections[s.name] = {
                "transport": "streamable_http",
                "url": s.url,
                "headers": forwarded,
                "timeout": timedelta(seconds=s.timeout_seconds),
                "sse_read_timeout": timedelta(seconds=s.timeout_seconds),
            }
        return MultiServerMCPClient(connections)

    async def tools(self) -> tuple[list[Any], dict[str, str]]:
        """The allowed tools of every server, and which server serves each."""
        client = self.client()
        tools: list[Any] = []
        owner: dict[str, str] = {}
        for s in self.settings.servers:
            try:
                listed = await client.get_tools(server_name=s.name)
                self.known[s.name] = listed
            except Exception as e:  # noqa: BLE001 - any failure to list: fall back, or raise
                if s.name not in self.known:
                    raise
                log.warning("listing %s's tools failed (%s); using the last list", s.name, e)
                listed = self.known[s.name]
            for tool in listed:
                if s.tools and tool.name not in s.tools:
                    continue
                tools.append(tool)
                owner[tool.name] = s.name
        return tools, owner

    async def call(self, server: str, name: str, args: dict[str, Any]) -> tuple[str, bool]:
        """Run one tool; the MCP result as JSON text, and whether it is an error."""
        async with self.client().session(server) as session:
            result = await session.call_tool(name, args)
        data = result.model_dump(mode="json", exclude_none=True, by_alias=True)
        return json.dumps({"content": data.get("content", []), "isError": result.isError}), bool(
            result.isError
        )


def _tier1_verdicts(resume: Any, calls: list[dict]) -> dict[str, str | None]:
    """Call id → None (approved) or the rejection text, from the resume value."""
    resume = resume if isinstance(resume, dict) else {}
    kind = resume.get("decision_type")
    decisions = resume.get("decisions") if isinstance(resume.get("decisions"), dict) else {}
    reasons = resume.get("rejection_reasons")
    reasons = reasons if isinstance(reasons, dict) else {}
    out: dict[str, str | None] = {}
    for call in calls:
        verdict = decisions.get(call["id"]) if kind == "batch" else kind
        if verdict == "approve":
            out[call["id"]] = None
            continue
        reason = reasons.get(call["id"]) or reasons.get("*")
        out[call["id"]] = f"{REJECTED} Reason: {reason}" if reason else REJECTED
    return out


def _answers(resume: Any, call: dict) -> str:
    """kagent-adk's ask_user result: ``[{"question", "answer": [...]}]`` as JSON."""
    answers = resume.get("ask_user_answers") if isinstance(resume, dict) else None
    answers = answers if isinstance(answers, list) else []
    questions = call["args"].get("questions") or []
    result = []
    for i, q in enumerate(questions):
        item = answers[i] if i < len(answers) and isinstance(answers[i], dict) else {}
        result.append({"question": (q or {}).get("question", ""), "answer": item.get("answer", [])})
    return json.dumps(result)


def _closed_history(messages: list[AnyMessage]) -> list[AnyMessage]:
    """The history with every tool call answered: a call left undecided (the user wrote
    instead of deciding) gets a "not run" result, which providers require."""
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    out: list[AnyMessage] = []
    for m in messages:
        out.append(m)
        if isinstance(m, AIMessage):
            for call in m.tool_calls:
                if call["id"] not in answered:
                    out.append(ToolMessage(NOT_RUN, tool_call_id=call["id"], name=call["name"]))
    return out


def build(settings: Settings, checkpointer: Any) -> Any:
    """The compiled graph: START → model → (tools → model)* → END."""
    toolbox = Toolbox(settings)
    model = ChatOpenAI(
        model=settings.model_name,
        base_url=settings.model_base_url,
        api_key=settings.model_api_key,
        max_retries=0,
    )

    async def model_node(state: State) -> dict:
        tools, _ = await toolbox.tools()
        bound = model.bind_tools([*tools, ASK_USER_TOOL])
        history = _closed_history(state["messages"])
        if settings.system_prompt:
            history = [SystemMessage(settings.system_prompt), *history]
        return {"messages": [await bound.ainvoke(history)]}

    async def tools_node(state: State) -> dict:
        calls = state["messages"][-1].tool_calls
        results: dict[str, ToolMessage] = {}
        # 1. Everything that pauses, before anything acts.
        for call in (c for c in calls if c["name"] == ASK_USER):
            resume = interrupt(
                {"action_requests": [{"name": ASK_USER, "args": call["args"], "id": call["id"]}]}
            )
            results[call["id"]] = ToolMessage(_answers(resume, call), tool_call_id=call["id"], name=ASK_USER)
        gated = [c for c in calls if c["name"] in settings.require_approval]
        if gated:
            resume = interrupt(
                {"action_requests": [{"name": c["name"], "args": c["args"], "id": c["id"]} for c in gated]}
            )
            for call_id, rejected in _tier1_verdicts(resume, gated).items():
                if rejected is not None:
                    name = next(c["name"] for c in gated if c["id"] == call_id)
                    log.info("tier 1: %s (%s) rejected", name, call_id)
                    results[call_id] = ToolMessage(rejected, tool_call_id=call_id, name=name, status="error")
        # 2. Then the approved and ungated calls, in the model's order.
        _, owner = await toolbox.tools()
        for call in calls:
            if call["id"] in results:
                continue
            server = owner.get(call["name"])
            if server is None:
                text, failed = f"Unknown tool {call['name']!r}.", True
            else:
                try:
                    text, failed = await toolbox.call(server, call["name"], call["args"])
                except Exception as e:  # noqa: BLE001 - the model hears of any transport failure
                    log.warning("%s failed: %s", call["name"], e)
                    text, failed = f"Tool call failed: {e}", True
            results[call["id"]] = ToolMessage(
                text, tool_call_id=call["id"], name=call["name"], status="error" if failed else "success"
            )
        return {"messages": [results[c["id"]] for c in calls]}

    def route(state: State) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    graph = StateGraph(State)
    graph.add_node("model", model_node)
    graph.add_node("tools", tools_node)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", route, ["tools", END])
    graph.add_edge("tools", "model")
    return graph.compile(checkpointer=checkpointer)
