// SPDX-License-Identifier: MIT
// The locald dashboard: services rack, one merged log stream, proxy requests, details,
// command palette. Data: GET /api/state and the logs API, then the SSE stream
// /api/events (state, service, log, request, reset, ready); actions are POSTs carrying
// the locald_csrf cookie's token in X-Locald-CSRF.

import { parseAnsi, segmentsToHtml, stripAnsi, escapeHtml } from "./ansi.js";
import { Ring, View, VirtualList } from "./logview.js";

const params = new URLSearchParams(location.search);
const CAP = Math.max(1000, Math.min(500000, parseInt(params.get("cap") || "100000", 10) || 100000));
const HISTORY_PER_SERVICE = 1000;
const ERROR_RE = /\b(error|errors|exception|fatal|panic|traceback|critical|failed|err!)\b/i;
const $ = (id) => document.getElementById(id);

const ICONS = {
  restart: '<svg viewBox="0 0 24 24"><path fill="currentColor" d="M12 5V2L7 6l5 4V7a5 5 0 1 1-5 5H5a7 7 0 1 0 7-7z"/></svg>',
  stop: '<svg viewBox="0 0 24 24"><rect x="6" y="6" width="12" height="12" rx="2" fill="currentColor"/></svg>',
  start: '<svg viewBox="0 0 24 24"><path fill="currentColor" d="M8 5v14l11-7z"/></svg>',
  open: '<svg viewBox="0 0 24 24"><path fill="currentColor" d="M14 3h7v7h-2V6.4l-9.3 9.3-1.4-1.4L17.6 5H14zM5 5h6v2H6v11h11v-5h2v6a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1z"/></svg>',
  chev: '<svg viewBox="0 0 24 24" width="12" height="12"><path fill="currentColor" d="M7 9l5 5 5-5z"/></svg>',
};

const UP_STATES = new Set(["running", "starting", "unhealthy", "waiting", "building"]);

// ---- state ----
const S = {
  projects: [],
  services: new Map(), // "project/service" → {data, color, lastSeq, lastCursor, busy}
  order: [], // keys in rack order
  selected: null,
  scope: null, // per-service log view
  hidden: new Set(),
  query: "",
  follow: true,
  detail: null, // {key, info}
  collapsed: new Set(JSON.parse(localStorage.getItem("locald.collapsed") || "[]")),
  historyLoaded: false,
  buffered: [],
  view: "logs",
  colorNext: 0,
  colors: new Map(JSON.parse(sessionStorage.getItem("locald.colors") || "[]")),
};

const ring = new Ring(CAP);
let view = new View(ring, null);
const reqRing = new Ring(5000);

// ---- helpers ----
function keyOf(p, s) {
  return `${p}/${s}`;
}
function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)locald_csrf=([0-9a-f]+)/);
  return m ? m[1] : "";
}
function fmtTime(usec) {
  const d = new Date(usec / 1000);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
function fmtDuration(usec) {
  let s = Math.floor(usec / 1e6);
  if (s < 60) return `${s}s`;
  let m = Math.floor(s / 60);
  s %= 60;
  if (m < 60) return `${m}m ${s}s`;
  const h = Math.floor(m / 60);
  m %= 60;
  if (h < 24) return `${h}h ${m}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}
function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1048576).toFixed(1)} MB`;
}
function toast(msg, kind = "") {
  const el = document.createElement("div");
  el.className = `toast ${kind}`;
  el.textContent = msg;
  $("toasts").appendChild(el);
  setTimeout(() => el.remove(), kind === "bad" ? 7000 : 3500);
}
function colorOf(key) {
  if (!S.colors.has(key)) {
    S.colors.set(key, S.colors.size % 10);
    sessionStorage.setItem("locald.colors", JSON.stringify([...S.colors]));
  }
  return S.colors.get(key);
}
function nowUsec() {
  return Date.now() * 1000;
}

// ---- API ----
async function api(method, path) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") opts.headers["X-Locald-CSRF"] = csrf();
  const r = await fetch(path, opts);
  let body = null;
  try {
    body = await r.json();
  } catch (e) {
    /* not JSON */
  }
  if (!r.ok) {
    const msg = body && body.error ? body.error.message : `${r.status} ${r.statusText}`;
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return body;
}

// ---- state from the server ----
function applyState(st) {
  S.projects = st.projects || [];
  const seen = new Set();
  S.order = [];
  for (const p of S.projects) {
    for (const s of p.services) {
      const key = keyOf(p.name, s.service);
      seen.add(key);
      S.order.push(key);
      const cur = S.services.get(key);
      if (cur) cur.data = s;
      else S.services.set(key, { data: s, color: colorOf(key), lastSeq: 0, lastCursor: "", busy: null });
    }
  }
  for (const k of [...S.services.keys()]) if (!seen.has(k)) S.services.delete(k);
  if (S.selected && !seen.has(S.selected)) S.selected = null;
  renderRack();
  renderFilters();
  if (S.detail) renderDetail();
}

function applyService(ev) {
  const s = ev.service;
  const key = keyOf(s.project, s.service);
  let entry = S.services.get(key);
  const p = S.projects.find((x) => x.name === s.project);
  if (!p) {
    S.projects.push({ name: s.project, domain: "", path: "", services: [s] });
  } else {
    const i = p.services.findIndex((x) => x.service === s.service);
    if (i >= 0) p.services[i] = s;
    else p.services.push(s);
  }
  if (!entry) {
    entry = { data: s, color: colorOf(key), lastSeq: 0, lastCursor: "", busy: null };
    S.services.set(key, entry);
    applyState({ projects: S.projects });
    return;
  }
  entry.data = s;
  // A transition settles what a button started.
  if (entry.busy && !["stopping"].includes(s.state) && entry.busy !== s.state) {
    if ((entry.busy === "restart" && s.state === "running") || (entry.busy === "stop" && s.state === "stopped") || (entry.busy === "start" && s.state === "running") || ["failed", "blocked", "exited"].includes(s.state))
      entry.busy = null;
  }
  updateServiceRow(key);
  if (S.detail && S.detail.key === key) renderDetail();
}

// ---- rack ----
function serviceRowHtml(key) {
  const e = S.services.get(key);
  const s = e.data;
  const sel = S.selected === key ? " selected" : "";
  const busy = e.busy ? " busy" : "";
  const up = UP_STATES.has(s.state);
  const stateText = e.busy ? `${e.busy === "stop" ? "stopping" : e.busy === "start" ? "starting" : "restarting"}…` : s.state;
  let link = "";
  if (s.url && up) link = `<a href="${escapeHtml(s.url)}" target="_blank" rel="noopener" title="Open ${escapeHtml(s.url)}">${escapeHtml(s.url.replace(/^https?:\/\//, ""))}</a>`;
  else if (s.url) link = `<span>${escapeHtml(s.url.replace(/^https?:\/\//, ""))}</span>`;
  else if (s.type === "worker") link = `<span>worker, no URL</span>`;
  const meta = [];
  if (s.port) meta.push(`:${s.port}`);
  if (s.pid) meta.push(`pid ${s.pid}`);
  if (s.pid && s.start_time_usec) meta.push(`up <span class="uptime" data-start="${s.start_time_usec}">${fmtDuration(nowUsec() - s.start_time_usec)}</span>`);
  if (s.restarts) meta.push(`${s.restarts} restart${s.restarts > 1 ? "s" : ""}`);
  if (!s.pid && s.status_reason) meta.push(escapeHtml(s.status_reason));
  else if (!s.pid && s.last_exit && s.last_exit.text) meta.push(escapeHtml(s.last_exit.text));
  const health = s.health === "failing" ? " · health failing" : "";
  return `<div class="svc${sel}${busy}" role="option" data-key="${escapeHtml(key)}" data-st="${escapeHtml(s.state)}" aria-selected="${sel ? "true" : "false"}" title="${escapeHtml(s.status_reason || s.state)}${health}">
    <span class="dot"></span>
    <span class="name"><i class="sw bg-c${e.color}"></i>${escapeHtml(s.service)}${s.type !== "exec" ? `<span class="tag-type">${escapeHtml(s.type)}</span>` : ""}${s.health === "failing" ? `<span class="tag-type">health failing</span>` : ""}</span>
    <span class="state" data-testid="state">${escapeHtml(stateText)}</span>
    <span class="meta">${link}</span>
    <span class="meta2">${meta.join(" · ")}</span>
    <span class="actions">
      <button class="act" data-act="restart" title="Restart (r)" aria-label="Restart ${escapeHtml(s.service)}" ${e.busy ? "disabled" : ""}>${ICONS.restart}</button>
      ${up ? `<button class="act" data-act="stop" title="Stop (s)" aria-label="Stop ${escapeHtml(s.service)}" ${e.busy ? "disabled" : ""}>${ICONS.stop}</button>` : `<button class="act" data-act="start" title="Start (s)" aria-label="Start ${escapeHtml(s.service)}" ${e.busy ? "disabled" : ""}>${ICONS.start}</button>`}
    </span>
  </div>`;
}

function renderRack() {
  const list = $("rack-list");
  const scroll = list.scrollTop;
  let html = "";
  let n = 0;
  for (const p of S.projects) {
    const col = S.collapsed.has(p.name) ? " collapsed" : "";
    html += `<div class="project${col}" data-project="${escapeHtml(p.name)}">
      <div class="project-head" data-project-head="${escapeHtml(p.name)}">
        <span class="chev">${ICONS.chev}</span>
        <span class="project-name">${escapeHtml(p.name)}</span>
        <span class="project-domain">${escapeHtml(p.domain || "")}</span>
        <span class="project-actions">
          <button class="act" data-pact="restart" title="Restart every service" aria-label="Restart project ${escapeHtml(p.name)}">${ICONS.restart}</button>
          <button class="act" data-pact="stop" title="Stop every service" aria-label="Stop project ${escapeHtml(p.name)}">${ICONS.stop}</button>
          <button class="act" data-pact="start" title="Start every service" aria-label="Start project ${escapeHtml(p.name)}">${ICONS.start}</button>
        </span>
      </div>`;
    for (const s of p.services) {
      html += serviceRowHtml(keyOf(p.name, s.service));
      n++;
    }
    html += "</div>";
  }
  list.innerHTML = html;
  list.scrollTop = scroll;
  $("rack-empty").hidden = S.projects.length > 0;
  $("rack-count").textContent = n ? `${n}` : "";
}

function updateServiceRow(key) {
  const old = document.querySelector(`.svc[data-key="${CSS.escape(key)}"]`);
  if (!old) return renderRack();
  const tmp = document.createElement("div");
  tmp.innerHTML = serviceRowHtml(key);
  old.replaceWith(tmp.firstElementChild);
}

function select(key, scroll = true) {
  S.selected = key;
  document.querySelectorAll(".svc.selected").forEach((el) => {
    el.classList.remove("selected");
    el.setAttribute("aria-selected", "false");
  });
  const el = key && document.querySelector(`.svc[data-key="${CSS.escape(key)}"]`);
  if (el) {
    el.classList.add("selected");
    el.setAttribute("aria-selected", "true");
    if (scroll) el.scrollIntoView({ block: "nearest" });
  }
}

$("rack-list").addEventListener("click", (ev) => {
  const pact = ev.target.closest("[data-pact]");
  if (pact) {
    ev.stopPropagation();
    const p = pact.closest("[data-project-head]").dataset.projectHead;
    projectAction(p, pact.dataset.pact);
    return;
  }
  const head = ev.target.closest("[data-project-head]");
  if (head) {
    const name = head.dataset.projectHead;
    if (S.collapsed.has(name)) S.collapsed.delete(name);
    else S.collapsed.add(name);
    localStorage.setItem("locald.collapsed", JSON.stringify([...S.collapsed]));
    head.parentElement.classList.toggle("collapsed");
    return;
  }
  if (ev.target.closest("a")) return;
  const row = ev.target.closest(".svc");
  if (!row) return;
  const key = row.dataset.key;
  const act = ev.target.closest("[data-act]");
  if (act) {
    ev.stopPropagation();
    serviceAction(key, act.dataset.act);
    return;
  }
  select(key, false);
  openDetail(key);
});

// ---- actions ----
async function serviceAction(key, action) {
  const e = S.services.get(key);
  if (!e || e.busy) return;
  const [project, service] = [e.data.project, e.data.service];
  e.busy = action;
  updateServiceRow(key);
  if (S.detail && S.detail.key === key) renderDetail();
  try {
    await api("POST", `/api/services/${encodeURIComponent(project)}/${encodeURIComponent(service)}/${action}`);
    const verb = { restart: "Restarted", stop: "Stopped", start: "Started" }[action];
    toast(`${verb} ${service}`, "ok");
  } catch (err) {
    toast(`${action} ${service}: ${err.message}`, "bad");
  } finally {
    e.busy = null;
    updateServiceRow(key);
    if (S.detail && S.detail.key === key) renderDetail();
  }
}

async function projectAction(project, action) {
  const keys = S.order.filter((k) => k.startsWith(`${project}/`));
  for (const k of keys) {
    const e = S.services.get(k);
    if (e && !e.busy) {
      e.busy = action;
      updateServiceRow(k);
    }
  }
  try {
    await api("POST", `/api/projects/${encodeURIComponent(project)}/${action}`);
    toast(`${{ restart: "Restarted", stop: "Stopped", start: "Started" }[action]} ${project}`, "ok");
  } catch (err) {
    toast(`${action} ${project}: ${err.message}`, "bad");
  } finally {
    for (const k of keys) {
      const e = S.services.get(k);
      if (e) {
        e.busy = null;
        updateServiceRow(k);
      }
    }
  }
}

// ---- detail panel ----
async function openDetail(key) {
  S.detail = { key, info: null };
  $("detail").hidden = false;
  renderDetail();
  const e = S.services.get(key);
  if (!e) return;
  try {
    const info = await api("GET", `/api/services/${encodeURIComponent(e.data.project)}/${encodeURIComponent(e.data.service)}`);
    if (S.detail && S.detail.key === key) {
      S.detail.info = info;
      renderDetail();
    }
  } catch (err) {
    if (S.detail && S.detail.key === key) {
      S.detail.error = err.message;
      renderDetail();
    }
  }
}

function closeDetail() {
  S.detail = null;
  $("detail").hidden = true;
}

function renderDetail() {
  const d = S.detail;
  const el = $("detail");
  const e = d && S.services.get(d.key);
  if (!e) {
    closeDetail();
    return;
  }
  const s = e.data;
  const info = d.info;
  const up = UP_STATES.has(s.state);
  const rows = [];
  const row = (k, v) => rows.push(`<dt>${k}</dt><dd>${v}</dd>`);
  row("State", `<span data-st="${escapeHtml(s.state)}"><span class="state">${escapeHtml(s.state)}</span></span>${s.status_reason ? `<div class="muted">${escapeHtml(s.status_reason)}</div>` : ""}`);
  row("Health", `${escapeHtml(s.health)} <span class="muted">(${escapeHtml(s.health_source)})</span>${s.health_detail ? `<div class="muted">${escapeHtml(s.health_detail)}</div>` : ""}`);
  if (s.url) row("URL", `<a href="${escapeHtml(s.url)}" target="_blank" rel="noopener">${escapeHtml(s.url)}</a>`);
  row("Port", s.port ? String(s.port) : "—");
  row("PID", s.pid ? String(s.pid) : "—");
  row("Uptime", s.pid && s.start_time_usec ? `<span class="uptime" data-start="${s.start_time_usec}">${fmtDuration(nowUsec() - s.start_time_usec)}</span>` : "—");
  row("Restarts", String(s.restarts));
  row("Last exit", s.last_exit ? escapeHtml(s.last_exit.text || "") : "—");
  if (s.depends_on && s.depends_on.length) row("Depends on", escapeHtml(s.depends_on.join(", ")));
  row("Type", escapeHtml(s.type));
  let html = `<h2><span class="dot" data-st="${escapeHtml(s.state)}"></span><span class="c${e.color}">${escapeHtml(s.service)}</span>
    <button class="icon-btn close-x" id="detail-close" title="Close (Esc)" aria-label="Close details">✕</button></h2>
    <div class="sub">${escapeHtml(s.project)}</div>
    <div class="buttons">
      <button class="btn primary" data-dact="restart" ${e.busy ? "disabled" : ""}>${ICONS.restart.replace("<svg", '<svg width="13" height="13"')} ${e.busy === "restart" ? "Restarting…" : "Restart"}</button>
      ${up ? `<button class="btn danger" data-dact="stop" ${e.busy ? "disabled" : ""}>${e.busy === "stop" ? "Stopping…" : "Stop"}</button>` : `<button class="btn" data-dact="start" ${e.busy ? "disabled" : ""}>${e.busy === "start" ? "Starting…" : "Start"}</button>`}
      <button class="btn" data-dact="logs">${S.scope === d.key ? "All logs" : "Only its logs"}</button>
      ${s.url ? `<a class="btn" href="${escapeHtml(s.url)}" target="_blank" rel="noopener">Open</a>` : ""}
    </div>
    <dl class="kv">${rows.join("")}</dl>`;
  if (s.warnings && s.warnings.length) html += `<h3>Warnings</h3>${s.warnings.map((w) => `<div class="warn-box">${escapeHtml(w)}</div>`).join("")}`;
  html += `<h3>Command</h3>`;
  if (info) html += info.command ? `<div class="cmd">${escapeHtml(info.command)}</div>` : `<div class="muted">default for its type</div>`;
  else html += `<div class="muted">${d.error ? escapeHtml(d.error) : "loading…"}</div>`;
  if (info && info.env) {
    html += `<h3>Environment <span class="muted">(${info.env.length})</span></h3><div class="env">`;
    for (const v of info.env) html += `<span class="k">${escapeHtml(v.name)}</span><span class="v${v.masked ? " masked" : ""}" ${v.masked ? 'title="hidden: looks like a secret"' : ""}>${escapeHtml(v.value)}</span>`;
    html += `</div>`;
  }
  el.innerHTML = html;
}

$("detail").addEventListener("click", (ev) => {
  if (ev.target.closest("#detail-close")) return closeDetail();
  const b = ev.target.closest("[data-dact]");
  if (!b || !S.detail) return;
  const a = b.dataset.dact;
  if (a === "logs") {
    setScope(S.scope === S.detail.key ? null : S.detail.key);
    renderDetail();
  } else serviceAction(S.detail.key, a);
});

// ---- logs ----
const logsEl = $("logs");
const emptyEl = document.createElement("div");
emptyEl.className = "logs-empty";
emptyEl.textContent = "Waiting for log lines…";
logsEl.appendChild(emptyEl);

function lineHtml(line) {
  if (!line.segs) line.segs = parseAnsi(line.text);
  if (S.query) return segmentsToHtml(line.segs, S.query);
  if (line.html === undefined) line.html = segmentsToHtml(line.segs, "");
  return line.html;
}

const list = new VirtualList(logsEl, 20, (el, i) => {
  const line = view.item(i);
  if (!line) {
    el.innerHTML = "";
    return;
  }
  const e = S.services.get(line.key);
  const color = e ? e.color : line.color;
  el.className = `vl-row${line.err ? " err" : ""}${line.stream === "system" ? " sys" : line.stream === "stderr" ? " stderr" : ""}${line.flash ? " flash" : ""}`;
  line.flash = false;
  el.dataset.key = line.key;
  el.innerHTML = `<span class="ln-time">${fmtTime(line.t)}</span><span class="ln-svc c${color}" title="${escapeHtml(line.key)}">${escapeHtml(line.svc)}</span><span class="ln-text">${lineHtml(line)}</span>`;
});
list.onUserScroll = (atEnd) => setFollow(atEnd);

function predicate() {
  const q = S.query.toLowerCase();
  const scope = S.scope;
  const hidden = S.hidden;
  if (!q && !scope && !hidden.size) return null;
  return (line) => {
    if (scope && line.key !== scope) return false;
    if (hidden.has(line.key)) return false;
    if (q) {
      if (line.lower === undefined) line.lower = stripAnsi(line.text).toLowerCase();
      if (!line.lower.includes(q)) return false;
    }
    return true;
  };
}

function refilter() {
  view.setFilter(predicate());
  list.setCount(view.length);
  list.invalidate();
  updateCount();
  if (S.follow) list.scrollToEnd();
}

let countTimer = 0;
function updateCount() {
  if (countTimer) return;
  countTimer = setTimeout(() => {
    countTimer = 0;
    const n = view.length;
    $("line-count").textContent = n === ring.total - ring.first ? `${n.toLocaleString()} lines` : `${n.toLocaleString()} of ${(ring.total - ring.first).toLocaleString()} lines`;
    emptyEl.hidden = n > 0;
    if (n === 0 && ring.total > 0) emptyEl.textContent = "No line matches.";
  }, 100);
}

const holes = [];
let filling = false;
let fillTimer = 0;
function scheduleFill() {
  if (!fillTimer) fillTimer = setTimeout(fillHoles, 50);
}
async function fillHoles() {
  while (holes.length) {
    const h = holes[0];
    try {
      const n = Math.min(5000, h.to - h.from + 1);
      const r = await api("GET", `/api/services/${encodeURIComponent(h.e.data.project)}/${encodeURIComponent(h.e.data.service)}/logs?cursor=${encodeURIComponent(h.cursor)}&n=${n}`);
      filling = true;
      for (const l of r.lines) if (l.seq >= h.from && l.seq <= h.to) addLine(l, true);
      filling = false;
      const got = r.lines.filter((l) => l.seq <= h.to);
      if (!got.length || got[got.length - 1].seq >= h.to || !r.next_cursor) holes.shift();
      else {
        h.from = got[got.length - 1].seq + 1;
        h.cursor = got[got.length - 1].cursor;
      }
    } catch (err) {
      filling = false;
      holes.shift();
    }
  }
  fillTimer = 0;
  flushRender();
}

let pendingRender = false;
function addLine(l, fromHistory = false) {
  const key = keyOf(l.project, l.service);
  let e = S.services.get(key);
  if (e && !filling) {
    if (l.seq && l.seq <= e.lastSeq) return false; // seen already
    // Lines dropped on the way (the bus under a flood): fetch them by cursor.
    if (l.seq && e.lastSeq && l.seq > e.lastSeq + 1 && e.lastCursor) {
      holes.push({ e, from: e.lastSeq + 1, to: l.seq - 1, cursor: e.lastCursor });
      scheduleFill();
    }
    if (l.seq) e.lastSeq = l.seq;
    if (l.cursor) e.lastCursor = l.cursor;
  }
  const plain = l.text.indexOf("\x1b") < 0 ? l.text : stripAnsi(l.text);
  const line = {
    key,
    svc: l.service,
    color: e ? e.color : colorOf(key),
    seq: l.seq,
    t: l.time_usec,
    stream: l.stream,
    text: l.text,
    err: ERROR_RE.test(plain),
  };
  const firstBefore = ring.first;
  ring.push(line);
  view.add(line);
  if (ring.first !== firstBefore) {
    const before = view.start;
    view.trim();
    const removed = view.start - before;
    if (removed > 0) {
      list.invalidate();
      if (!S.follow) {
        // Keep the lines under the reader's eyes where they are.
        list.programmatic++;
        logsEl.scrollTop = Math.max(0, logsEl.scrollTop - removed * list.rowHeight);
      }
    }
  }
  if (!fromHistory && !pendingRender) {
    pendingRender = true;
    requestAnimationFrame(flushRender);
  }
  return true;
}

function flushRender() {
  pendingRender = false;
  list.setCount(view.length);
  if (S.follow) list.scrollToEnd();
  else list.schedule();
  updateCount();
}

function setFollow(on) {
  if (S.follow === on) return;
  S.follow = on;
  const b = $("follow");
  b.setAttribute("aria-pressed", on ? "true" : "false");
  $("follow-text").textContent = on ? "Following" : "Paused";
  if (on) list.scrollToEnd();
}

function jumpToLastError() {
  for (let i = view.length - 1; i >= 0; i--) {
    const line = view.item(i);
    if (line && line.err) {
      setFollow(false);
      line.flash = true;
      list.invalidate();
      list.scrollToIndex(i);
      return true;
    }
  }
  toast("No error in the lines shown");
  return false;
}

function setScope(key) {
  S.scope = key;
  const sc = $("scope");
  if (key) {
    const e = S.services.get(key);
    const name = e ? e.data.service : key;
    sc.innerHTML = `<span class="c${e ? e.color : 0}">${escapeHtml(name)}</span><span class="muted">${escapeHtml(e ? e.data.project : "")}</span><button class="chip-x" id="scope-clear" title="Show every service (l)">✕ all services</button>`;
  } else sc.innerHTML = `<span class="scope-all">All services</span>`;
  renderFilters();
  refilter();
}
$("scope").addEventListener("click", (ev) => {
  if (ev.target.closest("#scope-clear")) setScope(null);
});

function renderFilters() {
  const f = $("filters");
  if (S.scope || S.order.length < 2) {
    f.innerHTML = "";
    return;
  }
  f.innerHTML = S.order
    .map((k) => {
      const e = S.services.get(k);
      return `<button class="chip" data-filter="${escapeHtml(k)}" aria-pressed="${S.hidden.has(k) ? "false" : "true"}" title="Show or hide ${escapeHtml(k)}"><i class="bg-c${e.color}"></i>${escapeHtml(e.data.service)}</button>`;
    })
    .join("");
}
$("filters").addEventListener("click", (ev) => {
  const b = ev.target.closest("[data-filter]");
  if (!b) return;
  const k = b.dataset.filter;
  if (ev.altKey || ev.metaKey) {
    // Solo: only this one (again: all).
    const solo = S.order.every((x) => x === k || S.hidden.has(x));
    S.hidden = new Set(solo ? [] : S.order.filter((x) => x !== k));
  } else if (S.hidden.has(k)) S.hidden.delete(k);
  else S.hidden.add(k);
  renderFilters();
  refilter();
});

let searchTimer = 0;
$("search").addEventListener("input", (ev) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    S.query = ev.target.value;
    refilter();
  }, 80);
});
$("follow").addEventListener("click", () => setFollow(!S.follow));
$("jump-error").addEventListener("click", jumpToLastError);

// History: the last lines of every service, merged by time, before the live ones.
async function loadHistory(keys) {
  const all = [];
  await Promise.all(
    keys.map(async (k) => {
      const e = S.services.get(k);
      if (!e) return;
      try {
        const r = await api("GET", `/api/services/${encodeURIComponent(e.data.project)}/${encodeURIComponent(e.data.service)}/logs?n=${HISTORY_PER_SERVICE}`);
        all.push(...r.lines);
      } catch (err) {
        /* the service is gone or superd is down: live lines still come */
      }
    }),
  );
  all.sort((a, b) => a.time_usec - b.time_usec || a.seq - b.seq);
  for (const l of all) addLine(l, true);
}

// After a reset or a gap: every service from the cursor it has.
async function catchUp() {
  for (const [, e] of S.services) {
    if (!e.lastCursor) continue;
    try {
      let cursor = e.lastCursor;
      for (let page = 0; page < 20; page++) {
        const r = await api("GET", `/api/services/${encodeURIComponent(e.data.project)}/${encodeURIComponent(e.data.service)}/logs?cursor=${encodeURIComponent(cursor)}&n=5000`);
        for (const l of r.lines) addLine(l, true);
        if (!r.more || !r.next_cursor) break;
        cursor = r.next_cursor;
      }
    } catch (err) {
      /* try again at the next reset */
    }
  }
  flushRender();
}

// ---- requests ----
const reqEl = $("requests");
let reqStart = 0;
const reqList = new VirtualList(reqEl, 22, (el, i) => {
  const r = reqRing.get(reqRing.first + i);
  if (!r) {
    el.innerHTML = "";
    return;
  }
  const cls = `s${Math.floor(r.status / 100)}`;
  el.innerHTML = `<span class="muted">${fmtTime(r.time_usec)}</span><span>${escapeHtml(r.method)}</span><span class="${cls}">${r.status || "—"}</span><span title="${escapeHtml(r.host)}">${escapeHtml(r.host)}</span><span title="${escapeHtml(r.path)}">${escapeHtml(r.path)}</span><span class="num">${(r.duration_usec / 1000).toFixed(1)} ms</span><span class="num muted">${fmtBytes(r.bytes)}</span>`;
});
let reqFollow = true;
reqList.onUserScroll = (atEnd) => (reqFollow = atEnd);
let reqPending = false;
function addRequest(r) {
  const before = reqRing.first;
  reqRing.push(r);
  if (reqRing.first !== before) reqList.invalidate();
  if (!reqPending) {
    reqPending = true;
    requestAnimationFrame(() => {
      reqPending = false;
      reqList.setCount(reqRing.total - reqRing.first);
      if (reqFollow) reqList.scrollToEnd();
      $("req-count").textContent = `${(reqRing.total - reqRing.first).toLocaleString()} requests`;
    });
  }
}
$("req-clear").addEventListener("click", () => {
  reqRing.clear();
  reqList.setCount(0);
  reqList.invalidate();
  $("req-count").textContent = "";
});

function showView(v) {
  S.view = v;
  $("view-logs").hidden = v !== "logs";
  $("view-requests").hidden = v !== "requests";
  $("tab-logs").setAttribute("aria-selected", v === "logs" ? "true" : "false");
  $("tab-requests").setAttribute("aria-selected", v === "requests" ? "true" : "false");
  if (v === "logs") list.schedule();
  else reqList.schedule();
}
document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => showView(b.dataset.view)));

// ---- live events ----
let es = null;
function connect() {
  const conn = $("conn");
  es = new EventSource("/api/events");
  es.onopen = () => {
    conn.dataset.state = "live";
    $("conn-text").textContent = "live";
  };
  es.onerror = () => {
    conn.dataset.state = "down";
    $("conn-text").textContent = "reconnecting";
  };
  es.addEventListener("state", (ev) => applyState(JSON.parse(ev.data)));
  es.addEventListener("ready", async () => {
    if (S.historyLoaded || S.loadingHistory) return;
    S.loadingHistory = true;
    await loadHistory([...S.order]);
    S.historyLoaded = true;
    for (const l of S.buffered) addLine(l, true);
    S.buffered = [];
    flushRender();
    document.body.dataset.ready = "1";
  });
  es.addEventListener("service", (ev) => applyService(JSON.parse(ev.data)));
  es.addEventListener("log", (ev) => {
    const l = JSON.parse(ev.data);
    if (!S.historyLoaded) S.buffered.push(l);
    else addLine(l);
  });
  es.addEventListener("request", (ev) => addRequest(JSON.parse(ev.data)));
  es.addEventListener("reset", () => S.historyLoaded && catchUp());
  es.addEventListener("logs-gap", () => S.historyLoaded && catchUp());
}

// ---- uptime ticks ----
setInterval(() => {
  const now = nowUsec();
  document.querySelectorAll(".uptime").forEach((el) => {
    el.textContent = fmtDuration(now - Number(el.dataset.start));
  });
}, 1000);

// ---- theme ----
function setTheme(t) {
  document.documentElement.dataset.theme = t;
  localStorage.setItem("locald.theme", t);
}
setTheme(params.get("theme") || localStorage.getItem("locald.theme") || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
$("theme").addEventListener("click", () => setTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark"));

// ---- command palette ----
let palItems = [];
let palActive = 0;
function commands() {
  const out = [];
  for (const k of S.order) {
    const e = S.services.get(k);
    const s = e.data;
    const name = `${s.service} (${s.project})`;
    out.push({ kind: "service", label: `Show ${name}`, hint: s.state, run: () => { select(k); openDetail(k); } });
    out.push({ kind: "logs", label: `Logs of ${name}`, run: () => { showView("logs"); setScope(k); } });
    out.push({ kind: "action", label: `Restart ${name}`, run: () => serviceAction(k, "restart") });
    if (UP_STATES.has(s.state)) out.push({ kind: "action", label: `Stop ${name}`, run: () => serviceAction(k, "stop") });
    else out.push({ kind: "action", label: `Start ${name}`, run: () => serviceAction(k, "start") });
    if (s.url) out.push({ kind: "open", label: `Open ${s.url}`, run: () => window.open(s.url, "_blank", "noopener") });
  }
  for (const p of S.projects) {
    out.push({ kind: "project", label: `Restart project ${p.name}`, run: () => projectAction(p.name, "restart") });
    out.push({ kind: "project", label: `Stop project ${p.name}`, run: () => projectAction(p.name, "stop") });
    out.push({ kind: "project", label: `Start project ${p.name}`, run: () => projectAction(p.name, "start") });
  }
  out.push({ kind: "view", label: "Go to logs", hint: "1", run: () => showView("logs") });
  out.push({ kind: "view", label: "Go to requests", hint: "2", run: () => showView("requests") });
  out.push({ kind: "logs", label: "Show every service's logs", run: () => { S.hidden.clear(); setScope(null); } });
  out.push({ kind: "logs", label: "Jump to the last error", hint: "e", run: jumpToLastError });
  out.push({ kind: "logs", label: S.follow ? "Pause following" : "Follow new lines", hint: "f", run: () => setFollow(!S.follow) });
  out.push({ kind: "view", label: "Toggle light / dark", hint: "t", run: () => $("theme").click() });
  out.push({ kind: "view", label: "Keyboard shortcuts", hint: "?", run: () => ($("help").hidden = false) });
  return out;
}
function openPalette() {
  $("palette").hidden = false;
  const inp = $("palette-input");
  inp.value = "";
  renderPalette();
  inp.focus();
}
function closePalette() {
  $("palette").hidden = true;
}
function renderPalette() {
  const words = $("palette-input").value.toLowerCase().split(/\s+/).filter(Boolean);
  palItems = commands().filter((c) => words.every((w) => c.label.toLowerCase().includes(w) || c.kind.includes(w)));
  palActive = Math.min(palActive, Math.max(0, palItems.length - 1));
  if (!words.length) palActive = 0;
  $("palette-list").innerHTML = palItems.length
    ? palItems
        .slice(0, 60)
        .map((c, i) => `<div class="pal-item${i === palActive ? " active" : ""}" data-i="${i}" role="option"><span class="pal-kind">${c.kind}</span><span>${escapeHtml(c.label)}</span>${c.hint ? `<span class="pal-hint">${escapeHtml(c.hint)}</span>` : ""}</div>`)
        .join("")
    : `<div class="pal-empty">Nothing matches.</div>`;
  const act = $("palette-list").querySelector(".active");
  if (act) act.scrollIntoView({ block: "nearest" });
}
function runPalette(i) {
  const c = palItems[i];
  closePalette();
  if (c) c.run();
}
$("palette-input").addEventListener("input", () => {
  palActive = 0;
  renderPalette();
});
$("palette-input").addEventListener("keydown", (ev) => {
  if (ev.key === "ArrowDown") {
    palActive = Math.min(palItems.length - 1, palActive + 1);
    renderPalette();
    ev.preventDefault();
  } else if (ev.key === "ArrowUp") {
    palActive = Math.max(0, palActive - 1);
    renderPalette();
    ev.preventDefault();
  } else if (ev.key === "Enter") {
    runPalette(palActive);
    ev.preventDefault();
  } else if (ev.key === "Escape") closePalette();
});
$("palette-list").addEventListener("click", (ev) => {
  const it = ev.target.closest("[data-i]");
  if (it) runPalette(Number(it.dataset.i));
});
$("palette").addEventListener("click", (ev) => {
  if (ev.target === $("palette")) closePalette();
});
$("open-palette").addEventListener("click", openPalette);
$("help").addEventListener("click", () => ($("help").hidden = true));

// ---- keyboard ----
function moveSelection(delta) {
  const visible = S.order.filter((k) => !S.collapsed.has(k.split("/")[0]));
  if (!visible.length) return;
  let i = visible.indexOf(S.selected);
  i = i < 0 ? (delta > 0 ? 0 : visible.length - 1) : Math.max(0, Math.min(visible.length - 1, i + delta));
  select(visible[i]);
  if (S.detail) openDetail(visible[i]);
}
document.addEventListener("keydown", (ev) => {
  if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "k") {
    ev.preventDefault();
    if ($("palette").hidden) openPalette();
    else closePalette();
    return;
  }
  const inInput = ev.target.closest && ev.target.closest("input, textarea");
  if (ev.key === "Escape") {
    if (!$("palette").hidden) return closePalette();
    if (!$("help").hidden) return ($("help").hidden = true);
    if (inInput) {
      ev.target.blur();
      return;
    }
    if (S.detail) return closeDetail();
    if (S.scope) return setScope(null);
    return;
  }
  if (inInput || ev.ctrlKey || ev.metaKey || ev.altKey || !$("palette").hidden) return;
  const sel = S.selected;
  switch (ev.key) {
    case "j":
    case "ArrowDown":
      if (ev.key === "ArrowDown" && ev.target.closest(".logs, .requests")) return;
      moveSelection(1);
      break;
    case "k":
    case "ArrowUp":
      if (ev.key === "ArrowUp" && ev.target.closest(".logs, .requests")) return;
      moveSelection(-1);
      break;
    case "Enter":
      if (sel) openDetail(sel);
      break;
    case "l":
      if (sel) setScope(S.scope === sel ? null : sel);
      break;
    case "r":
      if (sel) serviceAction(sel, "restart");
      break;
    case "s":
      if (sel) serviceAction(sel, UP_STATES.has(S.services.get(sel).data.state) ? "stop" : "start");
      break;
    case "o":
      if (sel && S.services.get(sel).data.url) window.open(S.services.get(sel).data.url, "_blank", "noopener");
      break;
    case "/":
      showView("logs");
      $("search").focus();
      break;
    case "f":
      setFollow(!S.follow);
      break;
    case "e":
      showView("logs");
      jumpToLastError();
      break;
    case "1":
      showView("logs");
      break;
    case "2":
      showView("requests");
      break;
    case "t":
      $("theme").click();
      break;
    case "?":
      $("help").hidden = !$("help").hidden;
      break;
    default:
      return;
  }
  ev.preventDefault();
});

// For tests and the curious: the live structures.
window.__locald = { ring, get view() { return view; }, list, reqRing, S, setScope, jumpToLastError };

connect();
