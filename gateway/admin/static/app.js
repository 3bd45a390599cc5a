// ocpp-gateway live view: plain JavaScript, no build step, no external resources.
//
// Every API call sends the admin token (typed once, kept in sessionStorage: this tab only).
// The trace is read with fetch() and a stream reader rather than EventSource, which cannot
// send the Authorization header: the token never appears in a URL or an access log.
// Everything received is shown with textContent, never parsed as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "ocpp-gateway-admin-token";
  const API = "/api/v1";
  const REFRESH_MS = 2000;
  const RECONNECT_MS = 2000;
  const MAX_ROWS = 500; // trace rows kept
  const MAX_CHARGER_ROWS = 1000; // chargers shown at once (the filter narrows them)
  const EARLY_ANSWER_MS = 1500;

  const $ = (id) => document.getElementById(id);
  const state = {
    chargers: [],
    selected: null,
    refreshTimer: null,
    trace: null, // {station, controller, rows, byKey, waiting, early}
  };

  // --- token and API -------------------------------------------------------------------

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  class Refused extends Error {}

  async function api(path, options = {}) {
    const headers = { Authorization: `Bearer ${token()}`, ...(options.headers || {}) };
    const response = await fetch(API + path, { ...options, headers, cache: "no-store" });
    if (response.status === 401) {
      throw new Refused("the admin token was refused");
    }
    return response;
  }

  function showMessage(text) {
    const message = $("message");
    message.textContent = text || "";
    message.hidden = !text;
  }

  function setStatus(element, text, kind) {
    element.textContent = text;
    element.className = `status ${kind || ""}`.trim();
  }

  function signedIn() {
    $("login").hidden = true;
    $("session").hidden = false;
    $("main").hidden = false;
    showMessage("");
    refreshChargers();
  }

  function signOut(reason) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(state.refreshTimer);
    stopTrace();
    $("trace-panel").hidden = true;
    state.selected = null;
    state.chargers = [];
    renderChargers();
    $("main").hidden = true;
    $("session").hidden = true;
    $("login").hidden = false;
    $("token").value = "";
    showMessage(reason || "");
    $("token").focus();
  }

  function handleFailure(error) {
    if (error instanceof Refused) {
      signOut("The admin token was refused: type it again.");
      return true;
    }
    return false;
  }

  // --- chargers ------------------------------------------------------------------------

  function pad(number, width = 2) {
    return String(number).padStart(width, "0");
  }

  function clock(epochSeconds, withMillis) {
    if (typeof epochSeconds !== "number") return "";
    const moment = new Date(epochSeconds * 1000);
    const time = `${pad(moment.getHours())}:${pad(moment.getMinutes())}:${pad(moment.getSeconds())}`;
    return withMillis ? `${time}.${pad(moment.getMilliseconds(), 3)}` : time;
  }

  function dateTime(epochSeconds) {
    if (typeof epochSeconds !== "number") return "";
    const moment = new Date(epochSeconds * 1000);
    const day = `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}`;
    return `${day} ${clock(epochSeconds, false)}`;
  }

  function ago(epochSeconds) {
    if (typeof epochSeconds !== "number") return "never";
    const seconds = Math.max(0, Math.round(Date.now() / 1000 - epochSeconds));
    if (seconds < 60) return `${seconds} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    return `${Math.floor(seconds / 3600)} h ago`;
  }

  function searchable(charger) {
    return [
      charger.station_id, charger.route, charger.protocol, charger.vendor, charger.model,
      charger.firmware, charger.shadow ? "shadow" : "", charger.pending_route,
    ].filter(Boolean).join(" ").toLowerCase();
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function renderChargers() {
    const body = $("chargers").tBodies[0];
    const words = $("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
    const shown = state.chargers.filter((c) => words.every((w) => searchable(c).includes(w)));
    body.replaceChildren();
    for (const charger of shown.slice(0, MAX_CHARGER_ROWS)) {
      const row = document.createElement("tr");
      row.dataset.station = charger.station_id;
      if (charger.station_id === state.selected) row.classList.add("selected");
      cell(row, charger.station_id, "mono");
      const route = cell(row, charger.route, `route ${charger.route}`);
      if (charger.pending_route) {
        const pending = document.createElement("div");
        pending.className = "pending";
        pending.textContent = `→ ${charger.pending_route} after its transaction`;
        route.appendChild(pending);
      }
      cell(row, charger.shadow ? "yes" : "");
      cell(row, charger.protocol);
      cell(row, [charger.vendor, charger.model].filter(Boolean).join(" / "));
      cell(row, charger.firmware || "");
      cell(row, dateTime(charger.connected_since));
      cell(row, ago(charger.last_message_at)).title = dateTime(charger.last_message_at);
      row.addEventListener("click", () => select(charger.station_id));
      body.appendChild(row);
    }
    const capped = shown.length > MAX_CHARGER_ROWS ? `, first ${MAX_CHARGER_ROWS} shown` : "";
    $("count").textContent = `(${shown.length} of ${state.chargers.length}${capped})`;
    $("empty").hidden = shown.length > 0 || state.chargers.length === 0;
  }

  async function refreshChargers() {
    clearTimeout(state.refreshTimer);
    if (!token()) return;
    try {
      const response = await api("/chargers");
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      state.chargers = await response.json();
      renderChargers();
      setStatus($("status"), "live", "live");
    } catch (error) {
      if (handleFailure(error)) return;
      setStatus($("status"), `cannot reach the gateway (${error.message})`, "down");
    }
    state.refreshTimer = setTimeout(refreshChargers, REFRESH_MS);
  }

  // --- trace ---------------------------------------------------------------------------

  const TYPES = { 2: "CALL", 3: "CALLRESULT", 4: "CALLERROR" };

  function select(stationId) {
    if (state.selected === stationId && state.trace) return;
    state.selected = stationId;
    renderChargers();
    startTrace(stationId);
  }

  // What each side speaks: a native 2.0.1 charger passes through, a legacy one stays 1.6.
  function versionsOf(charger) {
    const native = Boolean(charger && charger.protocol === "ocpp2.0.1");
    const legacy = Boolean(charger && charger.route === "legacy");
    return { left: native ? "2.0.1" : "1.6", right: legacy ? "1.6" : "2.0.1" };
  }

  function stopTrace() {
    if (state.trace) {
      state.trace.controller.abort();
      clearTimeout(state.trace.retry);
      for (const early of state.trace.early.values()) clearTimeout(early.timer);
    }
    state.trace = null;
  }

  function startTrace(stationId) {
    stopTrace();
    const trace = {
      station: stationId,
      controller: new AbortController(),
      rows: [],
      byKey: new Map(), // "left|id" / "right|id" -> the row waiting for that answer
      waiting: { left: [], right: [] }, // rows whose other side has no CALL yet
      early: new Map(), // answers seen before their CALL (the gateway logs a sent CALL late)
      retry: null,
      versions: versionsOf(state.chargers.find((c) => c.station_id === stationId)),
    };
    state.trace = trace;
    $("trace-panel").hidden = false;
    $("trace-station").textContent = stationId;
    $("left-title").textContent = `OCPP ${trace.versions.left} · charger`;
    $("right-title").textContent = trace.versions.right === "1.6"
      ? "OCPP 1.6 · legacy CSMS" : `OCPP ${trace.versions.right} · CSMS`;
    $("trace").tBodies[0].replaceChildren();
    readTrace(trace);
  }

  async function readTrace(trace) {
    setStatus($("trace-state"), "connecting…");
    try {
      const path = `/chargers/${encodeURIComponent(trace.station)}/trace`;
      const response = await api(path, {
        headers: { Accept: "text/event-stream" },
        signal: trace.controller.signal,
      });
      if (!response.ok) {
        let detail = `HTTP ${response.status}`;
        try { detail = (await response.json()).error || detail; } catch (_) { /* not JSON */ }
        throw new Error(detail);
      }
      setStatus($("trace-state"), "live", "live");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split("\n").filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).replace(/^ /, "")).join("\n");
          if (data && state.trace === trace) onTraceEvent(trace, JSON.parse(data));
        }
      }
      throw new Error("the stream ended");
    } catch (error) {
      if (trace.controller.signal.aborted || state.trace !== trace) return;
      if (handleFailure(error)) return;
      setStatus($("trace-state"), `reconnecting (${error.message})`, "down");
      trace.retry = setTimeout(() => { if (state.trace === trace) readTrace(trace); }, RECONNECT_MS);
    }
  }

  function parseFrame(text) {
    try {
      const frame = JSON.parse(text);
      if (Array.isArray(frame) && TYPES[frame[0]] && typeof frame[1] === "string") return frame;
    } catch (_) { /* shown as a bad frame */ }
    return null;
  }

  function newRow(trace, origin, at) {
    const row = { origin, at, left: {}, right: {}, element: document.createElement("tr") };
    trace.rows.push(row);
    const body = $("trace").tBodies[0];
    body.insertBefore(row.element, body.firstChild);
    while (trace.rows.length > MAX_ROWS) {
      forget(trace, trace.rows.shift());
    }
    return row;
  }

  function forget(trace, row) {
    row.element.remove();
    unwait(trace, row);
    for (const [key, waiting] of trace.byKey) {
      if (waiting === row) trace.byKey.delete(key);
    }
  }

  function unwait(trace, row) {
    for (const side of ["left", "right"]) {
      const index = trace.waiting[side].indexOf(row);
      if (index >= 0) trace.waiting[side].splice(index, 1);
    }
  }

  // One event: a frame on one side. A CALL from the charger (charger/in) opens a row whose
  // 2.0.1 side is the next CALL the gateway sends the CSMS (csms/out), and the other way
  // round for a CALL from the CSMS; answers join their CALL's row by message id per side.
  function onTraceEvent(trace, event) {
    const side = event.side === "charger" ? "left" : "right";
    const frame = parseFrame(event.text);
    const message = { event, frame };
    if (frame === null) {
      const row = newRow(trace, side === "left" ? "charger" : "csms", event.at);
      row[side].bad = message;
      renderRow(trace, row);
      return;
    }
    const key = `${side}|${frame[1]}`;
    if (frame[0] === 2) {
      const fromCharger = (side === "left") === (event.direction === "in");
      const origin = fromCharger ? "charger" : "csms";
      // Sent by the gateway on the other side than the CALL's origin: a translation.
      const translated = (fromCharger && side === "right") || (!fromCharger && side === "left");
      let row = translated ? trace.waiting[side].shift() : undefined;
      if (!row) {
        row = newRow(trace, origin, event.at);
        if (!translated) trace.waiting[side === "left" ? "right" : "left"].push(row);
      }
      row[side].call = message;
      trace.byKey.set(key, row);
      const early = trace.early.get(key);
      if (early) {
        clearTimeout(early.timer);
        trace.early.delete(key);
        attachAnswer(trace, row, side, key, early.message);
      }
      renderRow(trace, row);
      return;
    }
    const row = trace.byKey.get(key);
    if (row) {
      attachAnswer(trace, row, side, key, message);
      renderRow(trace, row);
      return;
    }
    // An answer before its CALL was seen: wait a moment for the CALL, else show it alone.
    const timer = setTimeout(() => {
      trace.early.delete(key);
      const alone = newRow(trace, event.direction === "out" ? "charger" : "csms", event.at);
      alone[side].answer = message;
      renderRow(trace, alone);
    }, EARLY_ANSWER_MS);
    trace.early.set(key, { message, timer });
  }

  function attachAnswer(trace, row, side, key, message) {
    row[side].answer = message;
    trace.byKey.delete(key);
    // The answer on the side the CALL came from ends the exchange: no translation follows.
    if ((row.origin === "charger") === (side === "left")) unwait(trace, row);
  }

  function actionName(action, version, isAnswer) {
    if (!action) return isAnswer ? "(answer)" : "";
    if (version === "1.6") return `${action}.${isAnswer ? "conf" : "req"}`; // OCPP 1.6 naming
    return `${action}${isAnswer ? "Response" : "Request"}`; // OCPP 2.0.1 naming
  }

  function pretty(value) {
    try { return JSON.stringify(value, null, 2); } catch (_) { return String(value); }
  }

  function messageBlock(message, version, action) {
    const block = document.createElement("div");
    const head = document.createElement("div");
    head.className = "msg-head";
    block.appendChild(head);
    const addSpan = (text, className) => {
      const span = document.createElement("span");
      span.className = className;
      span.textContent = text;
      head.appendChild(span);
      return span;
    };
    const pre = document.createElement("pre");
    const frame = message.frame;
    if (frame === null) {
      block.className = "msg bad";
      addSpan("UNREADABLE", "kind");
      pre.textContent = message.event.text;
      block.appendChild(pre);
      return block;
    }
    const kind = TYPES[frame[0]];
    addSpan(kind, `kind ${kind}`);
    const name = frame[0] === 2 ? actionName(frame[2], version, false)
      : frame[0] === 3 ? actionName(action, version, true) : action || "(answer)";
    addSpan(name, "action");
    addSpan(`#${frame[1]}`, "msgid");
    if (frame[0] === 4) {
      block.className = "msg callerror";
      const detail = document.createElement("div");
      const code = document.createElement("span");
      code.className = "error-code";
      code.textContent = String(frame[2]);
      const description = document.createElement("span");
      description.className = "error-description";
      description.textContent = frame[3] ? ` — ${frame[3]}` : "";
      detail.append(code, description);
      block.appendChild(detail);
      if (frame[4] && typeof frame[4] === "object" && Object.keys(frame[4]).length) {
        pre.textContent = pretty(frame[4]);
        block.appendChild(pre);
      }
      return block;
    }
    block.className = `msg ${frame[0] === 2 ? "call" : "result"}`;
    pre.textContent = pretty(frame[0] === 2 ? frame[3] : frame[2]);
    block.appendChild(pre);
    return block;
  }

  function sideCell(trace, row, side) {
    const td = document.createElement("td");
    const parts = row[side];
    const action = parts.call && parts.call.frame ? parts.call.frame[2] : "";
    td.className = side;
    for (const message of [parts.bad, parts.call, parts.answer]) {
      if (message) td.appendChild(messageBlock(message, trace.versions[side], action));
    }
    if (!td.childNodes.length) {
      td.classList.add("missing");
      const answered = row[row.origin === "charger" ? "left" : "right"].answer;
      if (side === "right" && row.origin === "charger") {
        td.textContent = answered ? "not sent to the CSMS: answered by the gateway" : "…";
      } else if (side === "left" && row.origin === "csms") {
        td.textContent = answered ? "not sent to the charger: answered by the gateway" : "…";
      } else {
        td.textContent = "(sent by the gateway itself)";
      }
    }
    return td;
  }

  function isError(message) {
    return Boolean(message && (message.frame === null || message.frame[0] === 4));
  }

  function renderRow(trace, row) {
    const tr = row.element;
    const error = ["left", "right"].some((side) =>
      isError(row[side].bad) || isError(row[side].call) || isError(row[side].answer));
    tr.className = error ? "error" : "";
    tr.dataset.origin = row.origin;
    const time = document.createElement("td");
    time.className = "time";
    time.textContent = clock(row.at, true);
    const arrow = document.createElement("td");
    arrow.className = "arrow";
    arrow.textContent = row.origin === "charger" ? "→" : "←";
    arrow.title = row.origin === "charger" ? "from the charger" : "from the CSMS";
    tr.replaceChildren(time, sideCell(trace, row, "left"), arrow, sideCell(trace, row, "right"));
    applyErrorsOnly(tr);
  }

  function applyErrorsOnly(tr) {
    tr.hidden = $("errors-only").checked && !tr.classList.contains("error");
  }

  // --- wiring --------------------------------------------------------------------------

  function init() {
    $("login").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("token").value.trim();
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      $("token").value = "";
      signedIn();
    });
    $("forget").addEventListener("click", () => signOut(""));
    $("filter").addEventListener("input", renderChargers);
    $("errors-only").addEventListener("change", () => {
      for (const tr of $("trace").tBodies[0].rows) applyErrorsOnly(tr);
    });
    $("trace-clear").addEventListener("click", () => {
      if (state.trace) {
        for (const row of state.trace.rows) forget(state.trace, row);
        state.trace.rows = [];
      }
    });
    $("trace-close").addEventListener("click", () => {
      stopTrace();
      state.selected = null;
      $("trace-panel").hidden = true;
      renderChargers();
    });
    if (token()) signedIn();
    else signOut("");
  }

  init();
})();
