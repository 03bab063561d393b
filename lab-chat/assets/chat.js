// lab chat: draws the conversation from the server's event stream and sends the user's
// messages, decisions and answers. Text only ever goes in through textContent.
"use strict";
(function () {
  const log = document.getElementById("log");
  if (!log) return; // the sign-in page
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const agent = document.body.dataset.agent;
  const statusLine = document.getElementById("status");
  const form = document.getElementById("say");
  const prompt = document.getElementById("prompt");
  const send = document.getElementById("send");
  const SLOW_MS = 2000;
  const tools = new Map();
  let last = -1;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function add(node) {
    log.appendChild(node);
    node.scrollIntoView({ block: "end" });
    return node;
  }
  function post(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(Object.assign({ agent: agent }, body)),
    }).then(function (r) {
      // The session ended (signed out elsewhere, expired, lab chat restarted): sign in again.
      if (r.status === 401) { location.assign("/signin?ended=1"); return false; }
      if (!r.ok) r.text().then(function (t) { add(el("div", "msg error", t || ("HTTP " + r.status))); });
      return r.ok;
    }, function () {
      add(el("div", "msg error", "The lab chat is not answering; try again in a moment."));
      return false;
    });
  }
  function args(value) {
    return value === null || value === undefined ? "" : JSON.stringify(value);
  }

  function approvalCard(e) {
    const card = el("div", "card approval");
    card.dataset.id = e.id;
    card.appendChild(el("h3", "", "Approval needed"));
    const what = el("p");
    what.append("The agent wants to run ");
    what.appendChild(el("strong", "tool-name", e.tool));
    card.appendChild(what);
    card.appendChild(el("pre", "args", JSON.stringify(e.args, null, 2)));
    if (e.hint) card.appendChild(el("p", "muted", e.hint));
    const actions = el("div", "actions");
    const approve = el("button", "btn btn-approve approve", "Approve");
    const reason = el("input", "reason");
    reason.placeholder = "Reason for rejecting (the agent sees it)";
    const reject = el("button", "btn btn-reject reject", "Reject");
    approve.type = reject.type = "button";
    actions.append(approve, reason, reject);
    card.appendChild(actions);
    function done(ok) {
      if (!ok) { approve.disabled = reject.disabled = reason.disabled = false; }
    }
    approve.addEventListener("click", function () {
      approve.disabled = reject.disabled = reason.disabled = true;
      post("/decide", { id: e.id, approve: true }).then(done);
    });
    reject.addEventListener("click", function () {
      approve.disabled = reject.disabled = reason.disabled = true;
      post("/decide", { id: e.id, approve: false, reason: reason.value }).then(done);
    });
    return card;
  }

  function questionCard(e) {
    const card = el("div", "card question");
    card.dataset.id = e.id;
    card.appendChild(el("h3", "", "The agent asks"));
    const inputs = [];
    e.questions.forEach(function (q) {
      card.appendChild(el("p", "question-text", q.question));
      const input = el("input", "answer");
      input.placeholder = q.choices.length ? "Pick one, or type your own answer" : "Your answer";
      if (q.choices.length) {
        const choices = el("div", "choices");
        q.choices.forEach(function (c) {
          const b = el("button", "btn btn-small choice", c);
          b.type = "button";
          b.addEventListener("click", function () { input.value = c; });
          choices.appendChild(b);
        });
        card.appendChild(choices);
      }
      card.appendChild(input);
      inputs.push(input);
    });
    const actions = el("div", "actions");
    const answer = el("button", "btn btn-primary send-answer", "Answer");
    answer.type = "button";
    answer.addEventListener("click", function () {
      answer.disabled = true;
      post("/answer", { id: e.id, answers: inputs.map(function (i) { return i.value.trim(); }) })
        .then(function (ok) { if (!ok) answer.disabled = false; });
    });
    actions.appendChild(answer);
    card.appendChild(actions);
    return card;
  }

  function settle(id, text) {
    const card = log.querySelector('.card[data-id="' + CSS.escape(id) + '"]');
    if (!card) return;
    card.classList.add("decided");
    card.querySelectorAll("button, input").forEach(function (b) { b.disabled = true; });
    card.appendChild(el("p", "outcome muted", text));
  }

  // What the agent said, as a person reads it: the sentence, then any rows as a table.
  function agentMessage(e) {
    const msg = el("div", "msg agent");
    msg.appendChild(el("p", "said", e.sentence));
    if (e.table) {
      const table = el("table", "rows");
      const head = el("tr");
      e.table.columns.forEach(function (c) { head.appendChild(el("th", "", c)); });
      table.appendChild(el("thead")).appendChild(head);
      const body = table.appendChild(el("tbody"));
      e.table.rows.forEach(function (row) {
        const tr = body.appendChild(el("tr"));
        row.forEach(function (c) { tr.appendChild(el("td", "", c)); });
      });
      msg.appendChild(table);
    }
    msg.title = e.text;
    return msg;
  }

  // What happened to a call, as its line says it.
  const OUTCOMES = {
    ran: function (e) { return "✓ ran: " + e.summary; },
    rejected: function (e) { return "✗ not run: rejected by you: " + (e.reason || "(no reason given)"); },
    denied: function (e) { return "✗ not run: denied at the gateway: " + (e.reason || "(no reason given)"); },
    failed: function (e) { return "✗ failed: " + e.error; },
  };

  function render(e) {
    switch (e.kind) {
      case "user": add(el("div", "msg user", e.text)); break;
      case "agent": add(agentMessage(e)); break;
      case "call": {
        const line = el("div", "tool");
        line.dataset.id = e.id;
        line.append("calls ");
        line.appendChild(el("strong", "", e.tool));
        line.append(" ");
        line.appendChild(el("code", "args", args(e.args)));
        const state = el("span", "state", " …");
        line.appendChild(state);
        add(line);
        const timer = setTimeout(function () {
          if (line.classList.contains("parked")) return;
          line.classList.add("slow");
          state.className = "state waiting";
          state.textContent = " waiting… (this call is taking a while)";
        }, SLOW_MS);
        tools.set(e.id, { line: line, state: state, timer: timer });
        break;
      }
      case "parked": {
        const t = tools.get(e.id);
        if (t) {
          clearTimeout(t.timer);
          t.line.classList.add("slow", "parked");
          t.state.className = "state waiting";
          t.state.textContent = " waiting for a platform reviewer…";
        }
        break;
      }
      case "result": {
        const t = tools.get(e.id);
        if (t) {
          clearTimeout(t.timer);
          t.line.classList.remove("slow", "parked");
          t.line.classList.add(e.outcome);
          t.state.className = "state outcome";
          t.state.textContent = " " + (OUTCOMES[e.outcome] || OUTCOMES.failed)(e);
          t.line.title = e.text;
        }
        break;
      }
      case "approval": add(approvalCard(e)); break;
      case "question": add(questionCard(e)); break;
      case "decided":
        settle(e.id, e.approved ? "You approved." : "You rejected: " + (e.reason || "(no reason)"));
        break;
      case "answered": settle(e.id, "You answered: " + e.answers.join(", ")); break;
      case "taken": add(el("div", "msg note taken", "The agent took your decision.")); break;
      case "ended": add(el("div", "msg note", "The task ended: " + e.state)); break;
      case "error": add(el("div", "msg error", e.text)); break;
      case "busy":
        statusLine.textContent = e.busy ? "The agent is working…" : "";
        document.body.classList.toggle("busy", e.busy);
        send.disabled = e.busy;
        break;
    }
  }

  const events = new EventSource("/events?agent=" + encodeURIComponent(agent));
  const RECONNECTING = "The lab chat is not answering: reconnecting…";
  let conversation = null;
  // "live": the page follows the conversation (and its script is ready for input).
  events.onopen = function () {
    document.body.classList.add("live");
    if (statusLine.textContent === RECONNECTING) statusLine.textContent = "";
  };
  events.onerror = function () {
    document.body.classList.remove("live");
    // Closed for good: the server refused the stream (the session ended). The chat page
    // itself says why and leads to the sign-in.
    if (events.readyState === EventSource.CLOSED) { location.assign("/"); return; }
    statusLine.textContent = RECONNECTING;
  };
  // The stream names its conversation first: another one (lab chat restarted, or "New chat"
  // in another tab) means this page shows a conversation that no longer exists.
  events.addEventListener("conversation", function (m) {
    if (conversation !== null && m.data !== conversation) { location.reload(); return; }
    conversation = m.data;
  });
  events.onmessage = function (m) {
    const e = JSON.parse(m.data);
    if (e.seq <= last) return; // a reconnect replays the log
    last = e.seq;
    render(e);
  };

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    const text = prompt.value.trim();
    if (!text) return;
    post("/say", { text: text }).then(function (ok) { if (ok) prompt.value = ""; });
  });
  prompt.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
  });
  // Picking an agent opens the chat with it.
  const pick = document.getElementById("agent");
  if (pick) pick.addEventListener("change", function () { pick.form.submit(); });
  document.getElementById("new-chat").addEventListener("click", function () {
    post("/new", {}).then(function (ok) { if (ok) location.reload(); });
  });
})();
