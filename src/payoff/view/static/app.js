// payoff view: the router, the API client and DOM helpers. Every text from the data goes in as
// textContent (never innerHTML): a completion is untrusted text.
"use strict";

const PV = { views: {}, source: null };

// h("div", {class: "x", onclick: f}, child, "text", [more]) -> an element
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  const add = (child) => {
    if (child === undefined || child === null || child === false) return;
    if (Array.isArray(child)) child.forEach(add);
    else el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  };
  children.forEach(add);
  return el;
}

function fmt(value, digits = 3) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(digits);
  return String(value);
}

function pretty(value) {
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
}

async function api(path, params) {
  const query = params ? "?" + new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== undefined && v !== null)) : "";
  const response = await fetch(path + query, { credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function go(route, params) {
  const query = params ? new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== undefined && v !== null && v !== false)).toString() : "";
  location.hash = "#/" + route + (query ? "?" + query : "");
}

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean);
  return { name: parts[0] || "", rest: parts.slice(1), params: Object.fromEntries(new URLSearchParams(query || "")) };
}

function setState(state) { document.body.dataset.state = state; }

async function render() {
  const hash = location.hash;
  const { name, rest, params } = route();
  const views = PV.source.views;
  const chosen = PV.views[name] ? name : (views[0] || "");
  const main = document.getElementById("main");
  document.querySelectorAll("#tabs a").forEach((a) => a.classList.toggle("on", a.dataset.view === chosen
    || (["sample", "group"].includes(name) && a.dataset.view === "samples")));
  document.body.dataset.view = chosen;
  setState("loading");
  try {
    const content = await PV.views[chosen](rest, params);
    main.replaceChildren(content);
  } catch (error) {
    main.replaceChildren(h("p", { class: "neg" }, "Error: " + error.message));
  }
  document.body.dataset.rendered = hash;  // what is on the page (tests wait for it to match the address)
  setState("ready");
}

async function start() {
  PV.source = await api("/api/source");
  document.getElementById("where").textContent = PV.source.path;
  const labels = { curves: "Curves", samples: "Samples", disagreements: "Disagreements", audit: "Audit", eval: "Eval" };
  document.getElementById("tabs").replaceChildren(...PV.source.views.map((v) => h("a", { href: "#/" + v, "data-view": v }, labels[v] || v)));
  window.addEventListener("hashchange", render);
  await render();
}

window.addEventListener("DOMContentLoaded", () => start().catch((error) => {
  document.getElementById("main").replaceChildren(h("p", { class: "neg" }, "Error: " + error.message));
  setState("ready");
}));
