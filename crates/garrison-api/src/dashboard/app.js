// garrison dashboard: a thin client of the same JSON API the CLI uses. Signed in with an
// access key, the token lives in sessionStorage (gone with the tab); signed in through single
// sign-on, the session is an HttpOnly cookie this script never sees, and every request that
// changes something carries the session's CSRF token. Every value is put on the page as text,
// never as HTML.
"use strict";

const store = window.sessionStorage;
const REFRESH_MS = 2000;
let timer = null;
let selectedAppliance = null;
// The single sign-on session (from /auth/session), or null.
let sso = null;
// Whether this server offers single sign-on (also from /auth/session).
let ssoOffered = false;

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const badge = (s, testid) => h("span", { class: `badge s-${s}`, "data-testid": testid }, s);
const usd = (n) => `$${(Number(n) || 0).toFixed(2)}`;
const signedUsd = (n) => (n < 0 ? "−" : "+") + usd(Math.abs(n));
const when = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z" : "–");

class ApiError extends Error {}

async function api(path, opts = {}) {
  const token = store.getItem("token");
  const headers = { ...(opts.headers || {}) };
  if (token) headers["x-aims-auth-token"] = token;
  else if (sso && (opts.method || "GET") !== "GET") headers["x-csrf-token"] = sso.csrf_token;
  const res = await fetch(path, { ...opts, headers });
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (res.status === 401) { signOut(); throw new ApiError("signed out: the session expired"); }
  if (!res.ok) throw new ApiError((body && (body.message || body.error)) || `HTTP ${res.status}`);
  return body;
}

function account() { return sso ? sso.account.id : store.getItem("account"); }

// Whether the signed-in user's role allows an operation in its own account (a key's token:
// the server decides alone).
function may(op) { return !sso || sso.may.includes(op); }

async function signOut() {
  if (sso) {
    await fetch("/auth/logout", { method: "POST", headers: { "x-csrf-token": sso.csrf_token } }).catch(() => null);
    sso = null;
  }
  store.clear();
  location.hash = "#/";
  render();
}

async function loadSession() {
  const res = await fetch("/auth/session").catch(() => null);
  const body = res && res.ok ? await res.json() : null;
  sso = body && body.signed_in ? body : null;
  ssoOffered = !!(body && body.sso);
}

async function signIn(ev) {
  ev.preventDefault();
  const f = ev.target;
  const err = document.getElementById("signin-error");
  err.textContent = "";
  const basic = btoa(`${f.access_key_id.value}:${f.secret_key.value}`);
  try {
    const res = await fetch("/aims/v1/authenticate", { method: "POST", headers: { authorization: `Basic ${basic}` } });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) { err.textContent = body.message || `sign-in failed (HTTP ${res.status})`; return; }
    store.setItem("token", body.authentication.token);
    store.setItem("account", body.authentication.account.id);
    store.setItem("who", `${body.authentication.account.name || ""} ${body.authentication.account.id}`.trim());
    render();
  } catch (e) {
    err.textContent = `cannot reach garrison: ${e.message}`;
  }
}

function main(...children) {
  const m = document.getElementById("main");
  m.replaceChildren(...children);
}

function schedule(fn) {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    try { await fn(); } catch (e) { showError(e); }
  }, REFRESH_MS);
}

function showError(e) {
  const box = document.getElementById("live-error");
  if (box) box.textContent = e.message;
}

// ---- deployments list -------------------------------------------------------------

async function listView() {
  const [deps, orgs] = await Promise.all([
    api(`/deployments/v1/${account()}/deployments`),
    api(`/deployments/v1/${account()}/organizations`),
  ]);
  const rows = deps.map((d) =>
    h("tr", { "data-testid": "deployment-row" },
      h("td", {}, h("a", { href: `#/d/${encodeURIComponent(d.id)}` }, d.name)),
      h("td", {}, d.platform && d.platform.id),
      h("td", {}, d.mode),
      h("td", {}, badge(d.status.status, "deployment-status")),
      h("td", { class: "mute" }, d.status.message || ""),
      h("td", { class: "mute" }, when((d.modified && d.modified.at) * 1000))));
  main(
    h("h1", {}, "Deployments"),
    h("p", { class: "error", id: "live-error" }),
    deps.length
      ? h("table", {}, h("tr", {}, ["Name", "AWS account", "Mode", "Status", "Message", "Modified"].map((t) => h("th", {}, t))), rows)
      : h("p", { class: "mute" }, "No deployments yet: garrison onboard creates one."),
    orgs.length ? h("h2", {}, "Organizations") : null,
    orgs.length ? h("table", {},
      h("tr", {}, ["Name", "Status", "Enrolled", "Pending", "Leaving", "Failed", "Excluded", "Message"].map((t) => h("th", {}, t))),
      orgs.map(orgRow)) : null,
  );
  schedule(() => route());
}

// ---- organization enrollments ---------------------------------------------------------

const memberCount = (st, state) => ((st && st.members) || []).filter((m) => m.state === state).length;

function orgRow(o) {
  const st = o.status || {};
  return h("tr", { "data-testid": "organization-row", "data-organization": o.id },
    h("td", {}, h("a", { href: `#/o/${encodeURIComponent(o.id)}` }, o.name)),
    h("td", {}, badge(st.updated ? st.status : "new", "organization-status")),
    ["enrolled", "pending", "leaving", "failed"].map((s) => h("td", { "data-testid": `org-${s}` }, memberCount(st, s))),
    h("td", { "data-testid": "org-excluded" }, (st.excluded || []).length),
    h("td", { class: "mute" }, st.message || ""));
}

async function orgView(id) {
  const [o, deps] = await Promise.all([
    api(`/deployments/v1/${account()}/organizations/${encodeURIComponent(id)}`),
    api(`/deployments/v1/${account()}/deployments`),
  ]);
  const byId = new Map(deps.map((d) => [d.id, d]));
  const st = o.status || {};
  const units = (o.include || []).map((u) => `${u.unit}${u.children ? " (and below)" : ""}`).join(", ");
  const members = (st.members || []).map((m) => {
    const d = m.deployment_id && byId.get(m.deployment_id);
    return h("tr", { "data-testid": "member-row", "data-account": m.aws_account, "data-state": m.state },
      h("td", {}, m.aws_account),
      h("td", {}, badge(m.state, "member-state")),
      h("td", {}, d ? h("a", { href: `#/d/${encodeURIComponent(d.id)}` }, d.name) : "–"),
      h("td", {}, d ? badge(d.status.status, "member-deployment-status") : "–"),
      h("td", { class: "mute", "data-testid": "member-reason" }, m.reason || (d && d.status.message) || ""));
  });
  const excluded = (st.excluded || []).map((x) =>
    h("tr", { "data-testid": "excluded-row", "data-account": x.aws_account, "data-why": x.why },
      h("td", {}, x.aws_account), h("td", {}, x.why.replaceAll("_", " "))));
  main(
    h("p", {}, h("a", { href: "#/" }, "← deployments")),
    h("h1", { "data-testid": "organization-name" }, o.name),
    h("p", { class: "error", id: "live-error" }),
    h("div", { class: "card facts" },
      fact("Status", badge(st.updated ? st.status : "new", "org-status"), "org-status-fact"),
      fact("Units", units || "–", "org-units"),
      fact("Role in each account", st.role || "–", "org-role"),
      fact("StackSet", o.stack_set, "org-stack-set"),
      fact("Lifecycle events", st.events ? "rule and queue in place" : "not set up yet", "org-events"),
      fact("Last pass", when(st.updated), "org-updated")),
    h("p", { class: "mute", "data-testid": "org-message" }, st.message || ""),
    h("h2", {}, `Accounts (${members.length})`),
    members.length
      ? h("table", {}, h("tr", {}, ["AWS account", "State", "Deployment", "Protection", "Why / status"].map((t) => h("th", {}, t))), members)
      : h("p", { class: "mute" }, "No account enrolled yet."),
    h("h2", {}, `Left out (${excluded.length})`),
    excluded.length ? h("table", {}, h("tr", {}, ["AWS account", "Why"].map((t) => h("th", {}, t))), excluded) : null,
  );
  schedule(() => route());
}

// ---- one deployment ------------------------------------------------------------------

function fact(k, v, testid) {
  return h("div", { class: "fact" }, h("div", { class: "k" }, k), h("div", { class: "v", "data-testid": testid }, v));
}

function auditHealth(src, dead) {
  if (!src) return "none";
  const trail = src.trail;
  if (!trail) return "failed";
  if (dead > 0) return "degraded";
  return "healthy";
}

// How changes reach garrison, in words: the live input and the age of the last one.
function freshnessText(f) {
  if (!f) return "–";
  const age = (s) => (s == null ? "none yet" : s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`);
  const live = {
    events: "event feed (EventBridge, seconds)",
    trail_files: "trail files only (about 5–15 min)",
    resync_only: "periodic resync only",
  }[f.live] || f.live;
  return `${live} · last event ${age(f.last_event_age_s)} · last log file ${age(f.last_file_age_s)}`;
}

function applianceRow(a) {
  const row = h("tr", {
    class: `appliance${selectedAppliance === a.instance_id ? " selected" : ""}`,
    "data-testid": "appliance",
    "data-instance": a.instance_id,
    onclick: () => { selectedAppliance = a.instance_id; route(); },
  },
  h("td", {}, a.role === "ids" ? "IDS" : "scan"),
  h("td", {}, h("code", {}, a.instance_id)),
  h("td", {}, a.instance_type),
  h("td", {}, a.zone),
  h("td", {}, badge(a.state)),
  h("td", {}, `${usd(a.monthly_usd)}/month`));
  return row;
}

// The VPC of the coverage picture a finding names (by its VPC, or the host's VPC).
function vpcOf(f, cov) {
  const r = f.resource || {};
  const vpcs = ((cov && cov.regions) || []).filter((x) => x.region === f.region).flatMap((x) => x.vpcs);
  return vpcs.find((v) => v.vpc_id === r.vpc_id) || null;
}

function findingsView(findings, cov) {
  if (!findings.length) return h("p", { class: "mute", "data-testid": "no-findings" }, "No GuardDuty or Inspector finding.");
  const sevs = ["critical", "high", "medium", "low", "informational"];
  const sorted = findings.slice().sort((x, y) =>
    (x.status === y.status ? 0 : x.status === "active" ? -1 : 1) || sevs.indexOf(x.severity) - sevs.indexOf(y.severity) || y.last_seen - x.last_seen);
  return h("table", { "data-testid": "findings" },
    h("tr", {}, ["Severity", "Finding", "Asset", "Seen", "Status"].map((t) => h("th", {}, t))),
    sorted.map((f) => {
      const r = f.resource || {};
      const v = vpcOf(f, cov);
      const where = v
        ? h("a", { href: "#", "data-testid": "finding-asset", onclick: (ev) => {
            ev.preventDefault();
            const el = document.querySelector(`[data-testid=vpc][data-vpc="${v.vpc_id}"]`);
            if (el) { el.scrollIntoView(); el.classList.add("selected"); }
          } }, r.asset_key || r.id)
        : h("span", { "data-testid": "finding-asset" }, r.asset_key || r.id || "–");
      const exposed = v && v.status !== "protected";
      return h("tr", { "data-testid": "finding", "data-finding": f.id, "data-severity": f.severity, "data-status": f.status },
        h("td", {}, badge(f.severity, "finding-severity")),
        h("td", {}, f.title, h("div", { class: "mute" }, `${f.source} · ${f.type}`)),
        h("td", {}, where, v ? h("div", { class: "mute" }, `in ${v.vpc_id} (${v.status})`) : null,
          exposed ? h("div", { class: "error", "data-testid": "finding-unprotected" }, "on an asset garrison does not protect") : null),
        h("td", { class: "mute" }, `${f.count}× · last ${when(f.last_seen)}`),
        h("td", {}, badge(f.status)));
    }));
}

function coverageView(cov, findings = [], report = null) {
  if (!cov) return h("p", { class: "mute" }, "Not discovered yet.");
  const c = cov.counts || {};
  // Each VPC's monthly appliance cost, from the protection report.
  const costOf = (region, vpc) => ((report && report.vpcs) || []).find((x) => x.region === region && x.vpc_id === vpc);
  return h("div", {},
    h("p", { "data-testid": "coverage-counts" },
      `${c.protected || 0} protected, ${c.unprotected || 0} unprotected, ${c.excluded || 0} excluded, ${c.idle || 0} idle VPC(s)`),
    cov.regions.map((r) =>
      h("div", { class: "card region", "data-testid": "region", "data-region": r.region },
        h("h3", {}, r.region, " ", badge(r.scope === "included" ? "included" : r.scope)),
        r.vpcs.length ? null : h("p", { class: "mute" }, "no VPCs"),
        r.vpcs.map((v) =>
          h("div", { class: `vpc vpc-${v.status}`, "data-testid": "vpc", "data-vpc": v.vpc_id, "data-status": v.status },
            h("div", {}, h("code", {}, v.vpc_id), " ", v.name ? `(${v.name}) ` : "", v.cidr, " ", badge(v.status, "vpc-status"),
              " ", h("span", { class: "mute" }, `${v.policy || "no policy"} · ${v.hosts_running} host(s) running`),
              v.protected_by ? h("span", { class: "mute", "data-testid": "vpc-hub" }, ` · protected by ${v.protected_by}`) : null,
              ((x) => x ? h("span", { class: "mute", "data-testid": "vpc-cost" }, ` · ${usd(x.monthly_usd)}/month`) : null)(costOf(r.region, v.vpc_id)),
              ((x) => x && x.mirror_sessions ? h("span", { class: "mute", "data-testid": "vpc-mirrored" }, ` · ${x.mirror_sessions} interface(s) mirrored to the IDS`) : null)(costOf(r.region, v.vpc_id)),
              ((n) => n ? h("span", { class: "error", "data-testid": "vpc-findings" }, ` · ${n} active finding(s)`) : null)(
                findings.filter((f) => f.status === "active" && f.region === r.region && (f.resource || {}).vpc_id === v.vpc_id).length)),
            h("div", { class: "zones" },
              v.zones.map((z) =>
                h("div", { class: "zone", "data-testid": "zone", "data-zone": z.zone },
                  h("div", {}, z.zone, " ", badge(z.status)),
                  h("div", { class: "mute" }, `${z.hosts_running} running, ${z.hosts_stopped} stopped`)))),
            v.appliances.length
              ? h("table", {}, v.appliances.map(applianceRow))
              : null)))));
}

// What each applied otis option adds to the monthly cost (negative: saves).
function tuningView(report) {
  const costs = (report && report.option_costs) || [];
  if (!costs.length) return h("p", { class: "mute", "data-testid": "no-options" }, "No tuning option applies (otis): garrison's defaults.");
  return h("table", { "data-testid": "option-costs" },
    h("tr", {}, ["Option", "Id", "Cost"].map((t) => h("th", {}, t))),
    costs.map((o) => h("tr", { "data-testid": "option-cost", "data-option": o.name },
      h("td", {}, o.name),
      h("td", {}, h("code", {}, o.option_id)),
      h("td", {}, `${signedUsd(o.monthly_usd)}/month`))));
}

// What weakens protection (open items first, each with its remedy), the appliances as
// their heartbeats say, and registrations garrison refused.
function healthView(health) {
  if (!health) return h("p", { class: "mute" }, "Health not available.");
  const open = health.items.filter((i) => i.status === "unhealthy");
  const closed = health.items.filter((i) => i.status !== "unhealthy").slice(0, 10);
  const itemRow = (i) => h("tr", { "data-testid": "health-item", "data-item": i.key, "data-status": i.status },
    h("td", {}, badge(i.status)),
    h("td", {}, h("code", {}, i.key)),
    h("td", {}, i.remedy),
    h("td", { class: "mute" }, i.status === "unhealthy" ? `since ${when(i.opened_ms)}` : `concluded ${when(i.concluded_ms)}`));
  return h("div", { class: "card", "data-testid": "health" },
    open.length
      ? h("table", {}, open.map(itemRow))
      : h("p", { "data-testid": "no-health-items" }, "Nothing weakens this deployment's protection."),
    closed.length ? h("details", {}, h("summary", {}, `${closed.length} concluded item(s)`), h("table", {}, closed.map(itemRow))) : null,
    health.appliances.length
      ? h("table", { "data-testid": "appliance-health" },
          h("tr", {}, ["Appliance", "Instance", "State", "Last heartbeat", "Doing"].map((t) => h("th", {}, t))),
          health.appliances.map((a) => h("tr", { "data-testid": "appliance-state", "data-instance": a.instance_id, "data-state": a.state },
            h("td", {}, h("code", {}, a.key)),
            h("td", {}, h("code", {}, a.instance_id)),
            h("td", {}, badge(a.state)),
            h("td", { class: "mute" }, a.last_heartbeat_ms ? when(a.last_heartbeat_ms) : "–"),
            h("td", {}, !a.work ? "–" : a.work.role === "ids" ? `${a.work.packets} packets, ${a.work.alerts} alerts` : a.work.last_scan_ms ? `last scan ${when(a.work.last_scan_ms)}` : "no scan yet"))))
      : h("p", { class: "mute" }, "No appliance reports in (garrison runs without --appliance-endpoint, or none is launched)."),
    health.refusals.length
      ? h("p", { class: "error", "data-testid": "refusals" },
          `${health.refusals.length} refused registration(s), latest: ${health.refusals[0].reason} from ${health.refusals[0].instance_id}`)
      : null);
}

function activityView(entries) {
  const shown = selectedAppliance
    ? entries.filter((e) => e.resource.includes(selectedAppliance) || e.message && e.message.includes(selectedAppliance))
    : entries;
  // The audit log comes newest first.
  const recent = shown.slice(0, 50);
  return h("div", { "data-testid": "activity" },
    selectedAppliance
      ? h("p", {}, "Activity of appliance ", h("code", { "data-testid": "activity-subject" }, selectedAppliance), " ",
          h("button", { onclick: () => { selectedAppliance = null; route(); } }, "show all"))
      : h("p", { class: "mute" }, "Most recent AWS writes first; click an appliance to follow it."),
    h("table", {},
      h("tr", {}, ["When", "Region", "Call", "Resource", "Outcome"].map((t) => h("th", {}, t))),
      recent.map((e) =>
        h("tr", { "data-testid": "activity-entry" },
          h("td", { class: "mute" }, when(e.at_ms)),
          h("td", {}, e.region),
          h("td", {}, e.call),
          h("td", {}, h("code", {}, e.resource)),
          h("td", {}, badge(e.outcome === "ok" ? "ok" : "failed"), e.message ? ` ${e.message}` : "")))));
}

async function planPreview(id, box) {
  box.replaceChildren(h("p", { class: "mute" }, "Discovering the account and planning…"));
  try {
    const p = await api(`/deployments/v1/${account()}/deployments/${encodeURIComponent(id)}/plan`);
    const counts = Object.entries(p.counts || {}).map(([k, v]) => `${v} ${k}`).join(", ") || "nothing to do";
    const c = p.cost || {};
    box.replaceChildren(
      h("p", { "data-testid": "plan-counts" }, `${p.actions.length} action(s): ${counts}`),
      h("p", { "data-testid": "plan-cost" },
        `Appliances: ${usd(c.now_usd_month || 0)}/month now, ${usd(c.planned_usd_month || 0)}/month planned (${signedUsd(c.delta_usd_month || 0)})`),
      p.actions.length
        ? h("table", {}, p.actions.slice(0, 200).map((a) => h("tr", {}, h("td", {}, a.op), h("td", {}, a.kind), h("td", {}, a.region), h("td", {}, h("code", {}, a.key)))))
        : null,
      (p.problems || []).map((x) => h("p", { class: "error" }, x)));
  } catch (e) {
    box.replaceChildren(h("p", { class: "error" }, e.message));
  }
}

async function deploymentView(id) {
  const a = account();
  const base = `/deployments/v1/${a}/deployments/${encodeURIComponent(id)}`;
  const d = await api(base);
  const [report, cov, audit, dead, found, healthNow] = await Promise.all([
    api(`${base}/protection`).catch(() => null),
    api(`${base}/coverage`).catch(() => null),
    api(`${base}/audit?limit=1000`).catch(() => ({ entries: [] })),
    api(`${base}/dead_letters?limit=100`).catch(() => ({ dead_letters: [] })),
    api(`/findings/v1/${a}/findings?deployment_id=${encodeURIComponent(id)}&page_size=100`).catch(() => ({ findings: [] })),
    api(`${base}/health`).catch(() => null),
  ]);
  const src = report && report.audit_source;
  const health = auditHealth(src, dead.dead_letters.length);
  const appliances = (report && report.vpcs || []).flatMap((v) => v.appliances);
  const planBox = h("div", { "data-testid": "plan" });
  const existingPlan = document.querySelector("[data-testid=plan]");
  if (existingPlan) planBox.replaceChildren(...existingPlan.childNodes);
  main(
    h("p", {}, h("a", { href: "#/" }, "← Deployments")),
    h("h1", { "data-testid": "deployment-name" }, d.name, " ", badge(d.status.status, "deployment-status")),
    h("p", { class: "mute", "data-testid": "status-message" }, d.status.message || ""),
    h("p", { class: "error", id: "live-error" }),
    h("div", { class: "card facts" },
      fact("AWS account", d.platform.id),
      fact("Mode", d.mode),
      fact("Enabled", d.enabled ? "yes" : "no", "enabled"),
      fact("Appliances", String(appliances.length), "appliance-count"),
      fact("VPCs protected", String(cov ? cov.counts.protected || 0 : 0), "protected-count"),
      fact("Estimated cost", `${usd(report ? report.monthly_appliance_usd : 0)}/month`, "cost"),
      fact("Audit source", health, "audit-health"),
      fact("Health", healthNow ? healthNow.status : "–", "health-status"),
      fact("Last reconcile", when(report && report.at * 1000))),
    h("div", { class: "card" },
      h("h2", {}, "Audit source"),
      src
        ? h("p", {}, `trail ${src.trail ? src.trail.id : "–"}${src.trail && src.trail.adopted ? " (adopted)" : ""} · bucket ${src.bucket ? src.bucket.id : "–"} · queue ${src.queue ? src.queue.id : "– (no notifications: changes seen at each resync)"} · ${dead.dead_letters.length} dead letter(s)`)
        : h("p", { class: "mute" }, "Not built yet."),
      src && src.feed
        ? h("p", {}, `event feed: bus ${src.feed.bus ? src.feed.bus.id : "–"} · rules in ${src.feed.regions.join(", ") || "no region"}`)
        : null,
      h("p", { "data-testid": "feed-freshness" }, `Changes arrive by: ${freshnessText(report && report.freshness)}`)),
    h("h2", {}, "Health"),
    healthView(healthNow),
    h("h2", {}, `Findings (${found.findings.filter((f) => f.status === "active").length} active)`),
    findingsView(found.findings, cov),
    h("h2", {}, "Coverage"),
    coverageView(cov, found.findings, report),
    h("h2", {}, "Tuning"),
    tuningView(report),
    h("h2", {}, "Activity"),
    activityView(audit.entries),
    h("h2", {}, "Plan preview"),
    h("div", { class: "actions" },
      h("button", { onclick: () => planPreview(id, planBox), "data-testid": "plan-button" }, "Preview the next reconcile"),
      may("update_deployment")
        ? h("button", { onclick: () => setEnabled(base, !d.enabled), "data-testid": "toggle-enabled" }, d.enabled ? "Disable the deployment" : "Enable the deployment")
        : null),
    planBox,
  );
  schedule(() => route());
}

async function setEnabled(base, enabled) {
  try {
    await api(base, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ enabled }) });
    route();
  } catch (e) { showError(e); }
}

// ---- routing -------------------------------------------------------------------------

async function route() {
  if (!store.getItem("token") && !sso) return render();
  const m = location.hash.match(/^#\/d\/(.+)$/);
  const o = location.hash.match(/^#\/o\/(.+)$/);
  try {
    if (m) await deploymentView(decodeURIComponent(m[1]));
    else if (o) await orgView(decodeURIComponent(o[1]));
    else await listView();
  } catch (e) {
    if (e instanceof ApiError) main(h("p", { class: "error", id: "live-error" }, e.message));
    else throw e;
  }
}

function render() {
  clearTimeout(timer);
  const signedIn = !!store.getItem("token") || !!sso;
  document.getElementById("signout").hidden = !signedIn;
  const who = sso ? `${sso.user.email} (${sso.role.name}) · account ${sso.account.name || ""} ${sso.account.id}` : `account ${store.getItem("who")}`;
  document.getElementById("who").textContent = signedIn ? who : "";
  if (!signedIn) {
    main(document.getElementById("signin-tpl").content.cloneNode(true));
    document.getElementById("signin").addEventListener("submit", signIn);
    document.getElementById("sso").hidden = !ssoOffered;
    return;
  }
  route();
}

window.addEventListener("hashchange", () => { selectedAppliance = null; route(); });
document.getElementById("signout").addEventListener("click", signOut);
loadSession().then(render);
