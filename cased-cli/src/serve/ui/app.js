// Mission Control: the live board at `/` and a page per deployment at `/deployments/{id}`.
// Every string from the API goes into the page through textContent or an attribute set with
// setAttribute (never innerHTML), so no event field can inject markup or script.
"use strict";

const KEY = "cased_read_key";
const $ = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** A link only for http(s) URLs; anything else is shown as text. */
function safeLink(url, text) {
  try {
    const u = new URL(url, location.href);
    if (u.protocol === "http:" || u.protocol === "https:") {
      return el("a", { href: u.href, rel: "noopener noreferrer" }, text);
    }
  } catch (_) { /* not a URL */ }
  return document.createTextNode(String(text));
}

function badge(value) {
  if (!value) return el("span", { class: "muted" }, "–");
  return el("span", { class: "badge " + String(value).replace(/[^a-z]/g, "") }, value);
}

function headers() {
  const k = sessionStorage.getItem(KEY);
  return k ? { Authorization: "Bearer " + k } : {};
}

class AuthError extends Error {}

async function api(path) {
  const res = await fetch(path, { headers: headers() });
  if (res.status === 401 || res.status === 403) {
    let message = "refused";
    try { message = (await res.json()).message; } catch (_) { /* not JSON */ }
    throw new AuthError(message);
  }
  return res;
}

function showLogin(message) {
  for (const id of ["board", "detail", "trends"]) $(id).hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  setLive(false, "signed out");
}

function setLive(on, text) {
  $("live").textContent = text;
  $("live").classList.toggle("on", on);
}

function time(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : "";
}

// ---- the live board --------------------------------------------------------------------------

const live = new Map(); // deployment id -> {phase, tick, verdict} from status updates

/** The final verdict, or the live one "so far" while monitoring. */
function verdictCell(d, l) {
  if (d.verdict) return badge(d.verdict);
  if (d.state === "interrupted") return badge("interrupted");
  if (d.state === "monitoring" && l.verdict) {
    return el("span", { class: "so-far", title: "after tick " + l.tick }, badge(l.verdict), " so far");
  }
  return badge(null);
}

function row(d) {
  const l = live.get(d.id) || {};
  const tr = el("tr", { "data-id": d.id },
    el("td", { class: "request" }, el("a", { href: "/deployments/" + encodeURIComponent(d.id) },
      (d.event && d.event.deployment_request) || d.id)),
    el("td", { class: "repository" }, d.repository
      ? el("a", { href: trendsUrl(d.repository, d.environment), title: "history and trends" }, d.repository)
      : "–"),
    el("td", { class: "environment" }, d.environment || "–"),
    el("td", { class: "commit" }, d.commit_sha ? d.commit_sha.slice(0, 7) : "–"),
    el("td", { class: "status" }, d.status),
    el("td", { class: "state" }, d.monitored ? (l.phase && d.state === "monitoring" ? "monitoring · " + l.phase : d.state) : "not monitored"),
    el("td", { class: "tick" }, l.tick ? String(l.tick) : "–"),
    el("td", { class: "verdict" }, verdictCell(d, l)),
    el("td", { class: "updated" }, time(d.updated_at_unix_ms)));
  tr.dataset.deployment = JSON.stringify(d);
  return tr;
}

function upsert(d) {
  const rows = $("rows");
  const old = rows.querySelector(`tr[data-id="${CSS.escape(d.id)}"]`);
  const tr = row(d);
  if (old) old.replaceWith(tr); else rows.prepend(tr);
  $("empty").hidden = rows.children.length > 0;
}

async function board() {
  const res = await api("/api/v1/deployments/?limit=100");
  const page = await res.json();
  $("login").hidden = true;
  $("board").hidden = false;
  $("rows").replaceChildren(...page.deployments.map(row));
  $("empty").hidden = page.deployments.length > 0;
  follow("/api/v1/events", (kind, data) => {
    if (kind === "deployment") upsert(data.deployment);
    if (kind === "status") {
      const u = data.update;
      live.set(data.deployment_id, { phase: u.phase, tick: u.tick, verdict: u.verdict });
      const tr = $("rows").querySelector(`tr[data-id="${CSS.escape(data.deployment_id)}"]`);
      if (tr) upsert(JSON.parse(tr.dataset.deployment));
    }
  });
}

// ---- the event stream (fetch, so the key goes in a header) -------------------------------

let stream = null;

async function follow(path, onEvent) {
  if (stream) stream.abort();
  stream = new AbortController();
  try {
    const res = await fetch(path, { headers: headers(), signal: stream.signal });
    if (!res.ok) throw new AuthError("the event stream was refused");
    setLive(true, "live");
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let kind = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) kind = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trimStart();
        }
        if (data) {
          try { onEvent(kind, JSON.parse(data)); } catch (e) { console.error(e); }
        }
      }
    }
  } catch (e) {
    if (e.name === "AbortError") return;
  }
  // The server went away or restarted: reconnect, reloading what was missed.
  stream = null;
  setLive(false, "reconnecting…");
  setTimeout(start, 2000);
}

// ---- one deployment ----------------------------------------------------------------------

async function detail(id) {
  const res = await api("/api/v1/deployments/" + encodeURIComponent(id));
  if (res.status === 404) {
    $("detail").hidden = false;
    $("detail-title").textContent = "No deployment " + id;
    return;
  }
  const d = await res.json();
  const base = "/api/v1/deployments/" + encodeURIComponent(id);
  $("login").hidden = true;
  $("detail").hidden = false;
  const e = d.event || {};
  $("detail-title").textContent = e.deployment_request || d.id;
  const fields = [
    ["Id", d.id],
    ["Repository", d.repository
      ? el("span", {}, d.repository + " · ", el("a", { href: trendsUrl(d.repository, d.environment) }, "history and trends"))
      : null],
    ["Environment", d.environment],
    ["Commit", commitLink(d, e)],
    ["Ref", e.ref],
    ["Commit message", e.commit_message],
    ["Status", d.status],
    ["State", d.monitored ? d.state : "not monitored: " + (d.unmonitored_reason || "")],
    ["Service", d.service],
    ["Verdict", badge(d.verdict)],
    ["Reason", d.reason],
    ["Pipeline", e.external_url ? safeLink(e.external_url, e.external_url) : null],
  ];
  $("detail-fields").replaceChildren(...fields.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const s = d.session || {};
  $("ticks").replaceChildren(...(s.ticks || []).map((t) => el("tr", {},
    el("td", {}, String(t.tick)), el("td", {}, t.phase),
    el("td", {}, t.checks.map((c) => c.name + ": " + c.status).join(", ")),
    el("td", {}, badge(t.verdict)))));
  const none = (what) => [el("li", { class: "muted" }, what)];
  // The final report when the session has ended; until then what history holds so far.
  const reportRes = await api(base + "/report?format=json");
  const r = reportRes.ok ? await reportRes.json() : null;
  const findingList = r ? r.findings : (s.findings || []).map((f) => f.finding);
  const findings = findingList.map((f) => el("li", { class: "finding" },
    badge(f.severity), " ", el("strong", {}, f.metric), " · " + f.detector + ": ", f.message));
  $("findings").replaceChildren(...(findings.length ? findings : none("No findings.")));
  const changes = ((r && r.changes) || []).map((c) => el("li", { class: "change" }, c.message));
  $("changes").replaceChildren(...(changes.length ? changes
    : none(r ? "No alarmed metric had a located change." : "Located when the session ends.")));
  $("alerts").replaceChildren(...alertItems(s.alerts || [], r, none));
  $("rollback").replaceChildren(rollbackText(r));
  $("incidents").replaceChildren(...incidentItems(d.incidents || [], none));
  await charts(base);
  if (!(s.ticks || []).length) {
    $("ticks").replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No ticks yet.")));
  }
  const report = await api(base + "/report?format=html");
  if (report.ok) {
    // A sandboxed frame without scripts: the report is a self-contained page.
    $("report").srcdoc = await report.text();
    $("report").hidden = false;
    $("report-note").textContent = "";
  } else {
    $("report").hidden = true;
    $("report-note").textContent = (await report.json()).message;
  }
  if (!stream) {
    follow("/api/v1/events?deployment=" + encodeURIComponent(id), () => detail(id));
  }
}

/** The commit as a link: `event_metadata.commit_url` when it is http(s), else the commit page
 *  on github.com or gitlab.com when the pipeline (`external_url`) is there, else text. */
function commitLink(d, e) {
  const sha = d.commit_sha;
  if (!sha) return null;
  const meta = e.event_metadata || {};
  if (typeof meta.commit_url === "string") return safeLink(meta.commit_url, sha);
  try {
    const u = new URL(e.external_url || "");
    const forge = { "github.com": "/commit/", "gitlab.com": "/-/commit/" }[u.hostname];
    if (forge && u.protocol === "https:" && d.repository) {
      const path = d.repository.split("/").map(encodeURIComponent).join("/");
      return safeLink(u.origin + "/" + path + forge + encodeURIComponent(sha), sha);
    }
  } catch (_) { /* no pipeline URL */ }
  return sha;
}

/** Alerts with their delivery outcome: history's alerts (state), and the report's failed
 *  deliveries (`alert_failures`, by alert key); an alert of an ended session without a failed
 *  delivery was delivered. */
function alertItems(alerts, r, none) {
  const failures = (r && r.alert_failures) || [];
  const items = alerts.map((a) => {
    const failed = failures.filter((f) => (f.keys || []).includes(a.dedup_key));
    const outcome = failed.length
      ? failed.map((f) => "not delivered to " + f.channel + " after " + f.attempts + " attempt(s)"
        + (f.error ? ": " + f.error : "")).join("; ")
      : (r ? "delivered" : "delivering");
    return el("li", { class: "alert" }, badge(a.severity), " ", a.title, " (" + a.state + ") · ",
      el("span", { class: failed.length ? "delivery failed" : "delivery" }, outcome));
  });
  return items.length ? items : none("No alerts.");
}

const RULES = {
  correlation_id: "same correlation id",
  active: "monitored at that time",
  latest_before: "the latest deployment before it",
};

/** Incidents correlated to this deployment, with the rule that chose it. */
function incidentItems(incidents, none) {
  const items = incidents.map((i) => el("li", { class: "incident" },
    el("strong", { class: "incident-title" }, i.title),
    " · " + new Date(i.time_unix_ms).toLocaleString() + " · " + (RULES[i.rule] || i.rule),
    i.service ? " · service " + i.service : null,
    i.environment ? " · " + i.environment : null,
    i.external_url ? " · " : null,
    i.external_url ? safeLink(i.external_url, "details") : null));
  return items.length ? items : none("No incidents correlated.");
}

function rollbackText(r) {
  if (!r) return document.createTextNode("Known when the session ends.");
  const rb = r.rollback;
  if (!rb) return document.createTextNode("The rollback hook did not fire.");
  const at = " after " + Math.round(rb.elapsed_ms / 100) / 10 + " s";
  return rb.error
    ? el("span", { class: "fail" }, "The rollback hook failed" + at + ": " + rb.error)
    : el("span", { class: "pass" }, "Rolled back" + at + ": the hook succeeded.");
}

// The SVG charts the core renders for the report (`report?format=charts`): parsed inert
// (DOMParser runs no script), then only chart elements and attributes are kept before they are
// moved into the page, so nothing but the chart markup can arrive this way.
const CHART_ELEMENTS = new Set(["style", "section", "h2", "p", "figure", "figcaption", "svg", "g",
  "rect", "line", "path", "polyline", "circle", "text", "title"]);

function sanitize(root) {
  for (const node of Array.from(root.querySelectorAll("*"))) {
    if (!CHART_ELEMENTS.has(node.localName)) { node.remove(); continue; }
    for (const a of Array.from(node.attributes)) {
      const name = a.name.toLowerCase();
      if (name.startsWith("on") || name.includes("href") || name === "src" || name === "style") {
        node.removeAttribute(a.name);
      }
    }
  }
}

async function charts(base) {
  const res = await api(base + "/report?format=charts");
  if (!res.ok) {
    $("charts").replaceChildren(el("h2", {}, "Metrics"),
      el("p", { class: "muted" }, "Charts appear when the session has ended."));
    return;
  }
  const doc = new DOMParser().parseFromString(await res.text(), "text/html");
  sanitize(doc.head);
  sanitize(doc.body);
  const nodes = [...doc.head.childNodes, ...doc.body.childNodes];
  $("charts").replaceChildren(...nodes.map((n) => document.adoptNode(n)));
}

// ---- history and trends of one repository + environment ------------------------------------

function trendsUrl(repository, environment) {
  const q = new URLSearchParams({ repository });
  if (environment) q.set("environment", environment);
  return "/trends?" + q.toString();
}

function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  const h = ms / 3600000;
  if (h >= 48) return (h / 24).toFixed(1) + " days";
  if (h >= 1) return h.toFixed(1) + " h";
  if (ms >= 60000) return Math.round(ms / 60000) + " min";
  if (ms < 1000) return Math.round(ms) + " ms";
  return (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + " s";
}

async function trends(params) {
  const q = new URLSearchParams();
  for (const k of ["repository", "environment", "days"]) {
    if (params.get(k)) q.set(k, params.get(k));
  }
  const res = await api("/api/v1/trends?" + q.toString());
  const t = await res.json();
  $("login").hidden = true;
  $("trends").hidden = false;
  if (!res.ok) { $("trends-title").textContent = t.message; return; }
  $("trends-title").textContent = t.repository + (t.environment ? " · " + t.environment : "");
  setLive(false, "as of " + time(t.to_unix_ms));
  $("trends-window").textContent = "From " + new Date(t.from_unix_ms).toLocaleDateString()
    + " to " + new Date(t.to_unix_ms).toLocaleDateString() + ".";
  const d = t.dora;
  const metric = (name, value, note) => el("div", { class: "metric", "data-metric": name },
    el("span", { class: "muted" }, name), el("span", { class: "value" }, value), el("span", { class: "muted" }, note));
  $("dora").replaceChildren(
    metric("Deployment frequency", d.deployment_frequency_per_day.toFixed(2) + " / day",
      d.deployments + " in " + Math.round(d.days) + " days"),
    metric("Lead time for changes", duration(d.lead_time_ms),
      d.lead_time_samples ? "median of " + d.lead_time_samples + " (commit_time to deployment)"
        : "no event carries event_metadata.commit_time"),
    metric("Change failure rate", d.change_failure_rate === null ? "–"
      : Math.round(d.change_failure_rate * 100) + " %", d.unhealthy + " unhealthy of " + d.finished + " finished"),
    metric("Time to restore", duration(d.time_to_restore_ms),
      d.restored + " restored, " + d.unrestored + " not (yet)"),
    metric("Time to detect", duration(t.time_to_detect ? t.time_to_detect.median_ms : null),
      t.time_to_detect ? "median of " + t.time_to_detect.count + " detected, longest "
        + duration(t.time_to_detect.max_ms) : "no deployment's problem was detected"));
  const span = Math.max(1, t.to_unix_ms - t.from_unix_ms);
  $("timeline").replaceChildren(...t.deployments.map((p) => {
    const dot = el("a", { class: "dot " + (p.verdict || "none"), href: "/deployments/" + encodeURIComponent(p.id),
      title: new Date(p.created_at_unix_ms).toLocaleString() + ": " + (p.verdict || "no verdict") });
    // Inside a 2 % margin, so the first and last dots stay in the box.
    dot.style.left = (2 + 96 * (p.created_at_unix_ms - t.from_unix_ms) / span).toFixed(2) + "%";
    return dot;
  }));
  $("trend-rows").replaceChildren(...t.deployments.slice().reverse().map((p) => el("tr", {},
    el("td", {}, el("a", { href: "/deployments/" + encodeURIComponent(p.id) }, p.id)),
    el("td", {}, new Date(p.created_at_unix_ms).toLocaleString()),
    el("td", { class: "verdict" }, badge(p.verdict)),
    el("td", {}, p.time_to_detect_ms === undefined || p.time_to_detect_ms === null ? "–"
      : duration(p.time_to_detect_ms)))));
  const perf = t.performance || [];
  const names = [...new Set(perf.flatMap((p) => Object.keys(p.medians)))].sort();
  $("performance-head").replaceChildren(el("th", { scope: "col" }, "Deployment"),
    ...names.map((n) => el("th", { scope: "col" }, n)));
  $("performance-rows").replaceChildren(...(perf.length ? perf.slice().reverse().map((p) => el("tr", {},
    el("td", {}, el("a", { href: "/deployments/" + encodeURIComponent(p.id) }, p.id), " ", badge(p.verdict)),
    ...names.map((n) => el("td", { "data-metric": n },
      p.medians[n] === undefined ? "–" : String(Math.round(p.medians[n] * 100) / 100)))))
    : [el("tr", {}, el("td", { class: "muted" }, "No monitored deployment in the window."))]));
}

// ---- start -------------------------------------------------------------------------------

async function start() {
  try {
    const m = location.pathname.match(/^\/deployments\/([^/]+)$/);
    if (m) await detail(decodeURIComponent(m[1]));
    else if (location.pathname === "/trends") await trends(new URLSearchParams(location.search));
    else await board();
  } catch (e) {
    if (e instanceof AuthError) showLogin(e.message);
    else { setLive(false, "offline"); setTimeout(start, 2000); }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("key").value.trim());
    $("key").value = "";
    stream = null;
    start();
  });
  start();
});
