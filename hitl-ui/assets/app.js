// hitl-ui's only script: keeps the queue live (EventSource on our own /live), ticks the
// countdowns, and sends decisions with the page's CSRF token. No third-party code. Cards
// arrive as markup rendered (and escaped) by the server; nothing here builds HTML from data
// except through textContent.
(() => {
  "use strict";

  const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
  const queue = document.getElementById("queue");
  const empty = document.getElementById("empty");
  const count = document.getElementById("queue-count");
  const upstreamBanner = document.getElementById("upstream-banner");
  const moreBanner = document.getElementById("more-banner");
  const liveStatus = document.getElementById("live-status");
  const toasts = document.getElementById("toasts");
  const baseTitle = document.title.replace(/^\(\d+\) /, "");

  // ---- countdowns -------------------------------------------------------------------
  function span(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
    if (m > 0) return `${m}m ${String(sec).padStart(2, "0")}s`;
    return `${sec}s`;
  }

  function tick() {
    for (const card of document.querySelectorAll(".card[data-expires-at]")) {
      const el = card.querySelector("[data-countdown]");
      if (!el) continue;
      const left = (Date.parse(card.dataset.expiresAt) - Date.now()) / 1000;
      el.textContent = left > 0 ? `expires in ${span(left)}` : "expiring now";
      el.classList.toggle("soon", left <= 60);
    }
  }
  tick();
  setInterval(tick, 1000);

  // ---- queue bookkeeping -------------------------------------------------------------
  function cards() {
    return queue ? Array.from(queue.querySelectorAll(":scope > .card")) : [];
  }

  function findCard(id) {
    return cards().find((card) => card.dataset.callId === id) ?? null;
  }

  function refreshCount() {
    const n = cards().length;
    if (count) {
      count.textContent = String(n);
      count.dataset.count = String(n);
    }
    if (empty) empty.hidden = n > 0;
    document.title = n > 0 ? `(${n}) ${baseTitle}` : baseTitle;
  }

  function fromHtml(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  // A card that changed (an approval counted) is replaced, keeping what the reviewer typed.
  function upsert(view) {
    if (!queue) return;
    const card = fromHtml(view.html);
    if (!card) return;
    const old = findCard(view.id);
    if (old) {
      if (old.outerHTML === card.outerHTML) return;
      const typed = old.querySelector("textarea")?.value ?? "";
      const focused = old.contains(document.activeElement);
      const said = old.querySelector(".form-message");
      old.replaceWith(card);
      const area = card.querySelector("textarea");
      if (area) area.value = typed;
      if (focused) area?.focus();
      const message = card.querySelector(".form-message");
      if (said && message && said.textContent) {
        message.textContent = said.textContent;
        message.className = said.className;
      }
      return;
    }
    card.classList.add("arriving");
    queue.appendChild(card);
    setTimeout(() => card.classList.remove("arriving"), 600);
  }

  function reconcile(views) {
    if (!queue) return;
    const wanted = new Set(views.map((v) => v.id));
    for (const card of cards()) {
      if (!wanted.has(card.dataset.callId)) card.remove();
    }
    for (const view of views) upsert(view);
    refreshCount();
    tick();
  }

  function toast(text, kind) {
    if (!toasts) return;
    const el = document.createElement("div");
    el.className = `toast ${kind ?? ""}`;
    el.textContent = text;
    toasts.appendChild(el);
    setTimeout(() => el.remove(), 6000);
  }

  function describeEnd(info) {
    const what = info.tool ?? "call";
    const who = info.reviewer ? ` by ${info.reviewer}` : "";
    const why = info.reason ? ` — “${info.reason}”` : "";
    return `${what} ${info.outcome}${who}${why}`;
  }

  // `false` when the card is not in the queue (the page of one call).
  function removeCard(id, info) {
    const card = findCard(id);
    if (!card) return false;
    card.remove();
    refreshCount();
    if (info) toast(describeEnd(info), info.outcome);
    return true;
  }

  // ---- live updates ------------------------------------------------------------------
  function setLive(state, text) {
    if (!liveStatus) return;
    liveStatus.dataset.state = state;
    liveStatus.textContent = text;
  }

  function setUpstream(connected) {
    if (upstreamBanner) upstreamBanner.hidden = connected;
    if (connected) setLive("live", "live");
    else setLive("degraded", "gate unreachable");
  }

  function connect() {
    const source = new EventSource("/live");
    const on = (name, handler) =>
      source.addEventListener(name, (event) => {
        try {
          handler(JSON.parse(event.data));
        } catch (err) {
          console.error(`bad ${name} event`, err);
        }
      });
    on("sync", (data) => {
      reconcile(data.cards);
      setUpstream(data.connected);
      if (moreBanner) moreBanner.hidden = !data.more;
    });
    on("card", (view) => {
      upsert(view);
      refreshCount();
      tick();
    });
    on("gone", (info) => removeCard(info.id, info));
    on("upstream", (data) => setUpstream(data.connected));
    // EventSource reconnects by itself; the next `sync` puts the queue right. Closed for
    // good means hitl-ui refused the stream (the session ended, e.g. hitl-ui restarted):
    // the queue page then leads to the sign-in and says why.
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        setLive("connecting", "session ended…");
        location.assign("/");
        return;
      }
      setLive("connecting", "reconnecting…");
    };
  }

  if (queue) {
    refreshCount();
    connect();
  }

  // ---- decisions ---------------------------------------------------------------------
  function say(form, text, kind, link) {
    const el = form.querySelector(".form-message");
    if (!el) return;
    el.textContent = text;
    el.className = `form-message ${kind}`;
    if (link) {
      const a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      el.append(" ", a);
    }
  }

  // "Show all" on a clamped block (cards pushed later included).
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("[data-show-all]") : null;
    if (!button) return;
    const clamp = button.closest(".clamp");
    if (!clamp) return;
    const open = clamp.classList.toggle("clamped") === false;
    button.setAttribute("aria-expanded", String(open));
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = open ? "Show less" : button.dataset.label;
  });

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.matches("form.decide")) return;
    event.preventDefault();
    const card = form.closest(".card");
    const decision = event.submitter?.value;
    if (!card || (decision !== "approve" && decision !== "reject")) return;

    const reason = form.elements.reason.value;
    const needed = decision === "approve" ? form.dataset.reasonApprove : form.dataset.reasonReject;
    if (needed === "required" && reason.trim() === "") {
      say(form, `This call's rule requires a reason to ${decision}.`, "error");
      form.elements.reason.focus();
      return;
    }
    const buttons = form.querySelectorAll("button");
    const wasDisabled = Array.from(buttons, (b) => b.disabled);
    buttons.forEach((b) => (b.disabled = true));
    say(form, decision === "approve" ? "Approving…" : "Rejecting…", "pending");
    try {
      const response = await fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          Accept: "application/json",
          "Content-Type": "application/x-www-form-urlencoded",
          "X-CSRF-Token": csrf,
        },
        body: new URLSearchParams({ decision, reason }),
      });
      const data = await response.json().catch(() => ({}));
      if (response.status === 202) {
        // One of several approvals the rule needs: the card stays, updated by the gate.
        say(form, data.progress ?? "Approval counted: the call waits for more.", "ok");
        return;
      }
      if (response.ok) {
        const info = {
          tool: data.toolName,
          outcome: data.outcome ?? (decision === "approve" ? "approved" : "rejected"),
          reviewer: data.reviewer,
          reason: data.reason,
        };
        if (!removeCard(card.dataset.callId, info)) {
          say(form, describeEnd(info), "ok", { href: "/", text: "Back to the queue" });
        }
        return;
      }
      const message = data.error ?? `The decision failed (HTTP ${response.status}).`;
      const link = response.status === 401 ? { href: "/signin", text: "Sign in" } : null;
      say(form, message, "error", link);
    } catch (err) {
      say(form, `Could not reach hitl-ui: ${err.message}`, "error");
    }
    buttons.forEach((b, i) => (b.disabled = wasDisabled[i]));
  });
})();
