// spreadwatch's status page: the table from /api/events (server-sent events), and a
// position's detail from /api/positions/{id}. Every value is set as text, never as HTML.
"use strict";

let nearShare = 0; // a nearest trigger with less than this share of its way left: amber (the API's)
let shown = null; // the id of the position whose detail is open
let latest = [];

function cell(row, text, numeric) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "-" : String(text);
  if (numeric) td.className = "num";
  return td;
}

function kind(trigger) {
  if (!trigger || trigger.left === null) return "";
  if (trigger.reached) return "reached";
  return Number(trigger.left) < nearShare ? "near" : "far";
}

function toGo(t) {
  if (!t || t.distance === null) return "-";
  if (t.reached) return "reached";
  return t.distance + " " + (t.unit === "points" ? "pts" : t.unit);
}

function pct(share) {
  return share === null ? "-" : (Number(share) * 100).toFixed(1) + "%";
}

function bars(td, p) {
  const box = document.createElement("div");
  box.className = "bars";
  for (const t of p.triggers) {
    const bar = document.createElement("div");
    bar.className = "bar " + kind(t);
    bar.title = t.label + ": " + toGo(t);
    const fill = document.createElement("span");
    const done = t.left === null ? 0 : Math.min(1, Math.max(0, 1 - Number(t.left)));
    fill.style.width = (done * 100).toFixed(0) + "%";
    bar.appendChild(fill);
    box.appendChild(bar);
  }
  td.appendChild(box);
}

function order(o) {
  if (!o) return "-";
  const limit = o.limit === null ? "" : " @ " + o.limit;
  return o.reason + " " + o.filled + "/" + o.contracts + limit;
}

function row(body, p) {
  const near = p.triggers.find((t) => t.reason === p.nearest);
  const tr = body.insertRow();
  tr.dataset.id = p.id;
  tr.className = kind(near) + (p.attention.length ? " attention" : "");
  cell(tr, p.id);
  cell(tr, p.underlying + " " + p.strategy);
  cell(tr, p.remaining + "/" + p.contracts, true);
  cell(tr, p.debit, true);
  cell(tr, p.pnl === null ? null : Number(p.pnl).toFixed(2), true);
  cell(tr, pct(p.pnl_pct), true);
  cell(tr, p.dte + "/" + p.time_stop_dte, true);
  cell(tr, near ? near.label : null);
  cell(tr, toGo(near), true);
  bars(tr.insertCell(), p);
  cell(tr, order(p.order));
  cell(tr, p.fills_today.length ? p.fills_today.length + " fill(s)" : "-");
  cell(tr, Number(p.realised).toFixed(2), true);
  tr.addEventListener("click", () => open(p.id));
}

function draw(body) {
  latest = body.positions;
  nearShare = Number(body.near);
  document.getElementById("at").textContent = body.at;
  const tbody = document.querySelector("#positions tbody");
  tbody.replaceChildren();
  for (const p of latest) row(tbody, p);
  document.getElementById("empty").hidden = latest.length > 0;
  const banners = document.getElementById("banners");
  banners.replaceChildren();
  for (const a of body.attention) {
    const div = document.createElement("div");
    div.className = "banner";
    div.textContent = a.position + " needs attention: " + a.reason;
    banners.appendChild(div);
  }
  if (shown !== null) fill(latest.find((p) => p.id === shown), null);
  document.getElementById("fills-count").textContent = String(body.fills_today.length);
  document.getElementById("realised-today").textContent = Number(body.realised_today).toFixed(2);
  rows("#fills", body.fills_today.slice().reverse(), (f) => [f.at, f.position, f.contracts,
    f.price, Number(f.realised).toFixed(2)]);
}

function rows(selector, items, cells) {
  const tbody = document.querySelector(selector + " tbody");
  tbody.replaceChildren();
  for (const item of items) {
    const tr = tbody.insertRow();
    for (const text of cells(item)) cell(tr, text);
  }
}

function trail(events) { // the audit trail, newest first
  rows("#events", events.slice().reverse(), (e) => [e.at, e.kind, e.label || e.reason,
    e.order_ref, e.detail]);
}

function fill(p, events) {
  if (!p) return;
  document.getElementById("detail-title").textContent =
    p.id + " " + p.underlying + " " + p.strategy + " (" + p.book + ")";
  rows("#legs", p.legs, (l) => [l.right + " " + l.strike, l.side, l.bid, l.ask, l.delta,
    l.delta_source, l.age === null ? null : l.age.toFixed(1)]);
  rows("#triggers", p.triggers, (t) => [t.label, t.value, t.threshold, toGo(t),
    t.left === null ? null : Number(t.left).toFixed(3)]);
  if (events !== null) trail(events);
}

async function open(id) {
  shown = id;
  const answer = await fetch("/api/positions/" + encodeURIComponent(id));
  if (!answer.ok) return;
  const body = await answer.json();
  document.getElementById("detail").hidden = false;
  const p = body.position || latest.find((q) => q.id === id);
  if (p) {
    fill(p, body.events);
  } else { // closed since the click: its audit trail only
    document.getElementById("detail-title").textContent = id + " (closed)";
    rows("#legs", [], () => []);
    rows("#triggers", [], () => []);
    trail(body.events);
  }
}

function connect() {
  const state = document.getElementById("state");
  const events = new EventSource("/api/events");
  events.addEventListener("positions", (e) => {
    state.textContent = "live";
    state.className = "state live";
    draw(JSON.parse(e.data));
  });
  events.onerror = () => {
    state.textContent = "reconnecting";
    state.className = "state";
  };
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("detail-close").addEventListener("click", () => {
    shown = null;
    document.getElementById("detail").hidden = true;
  });
  connect();
});
