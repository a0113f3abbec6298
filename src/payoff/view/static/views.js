// payoff view: the pages. Each returns an element; app.js puts it in <main>.
"use strict";

const COLORS = ["#2a62c9", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#1098ad", "#e67700", "#5c940d", "#495057"];

// -- curves: one uPlot panel per family of metrics; a click lists that step's samples -------------------
PV.views.curves = async () => {
  const data = await api("/api/metrics");
  const wrap = h("div", {}, h("p", { class: "hint" }, "Click a step on any curve to list its samples."
    + (PV.source.views.includes("samples") ? "" : " (this run logged no samples)")));
  const grid = h("div", { class: "panels" });
  wrap.appendChild(grid);
  const sync = uPlot.sync("steps");
  const panels = data.panels.concat(data.other.length ? [{ title: "other", keys: data.other.slice(0, 8) }] : []);
  const plots = [];
  for (const panel of panels) {
    const box = h("div", { class: "panel", "data-panel": panel.title }, h("h3", {}, panel.title));
    grid.appendChild(box);
    const series = [{ label: "step" }].concat(panel.keys.map((key, i) => ({
      label: key, stroke: COLORS[i % COLORS.length], width: 1.5,
      points: { show: key === "warnings" || key === "heldout_accuracy" || data.steps.length < 30 },
      paths: key === "warnings" ? () => null : undefined,
    })));
    const values = [data.steps].concat(panel.keys.map((key) => data.series[key]));
    const opts = {
      width: 440, height: 200, series, cursor: { sync: { key: sync.key }, points: { size: 6 } },
      scales: { x: { time: false } }, legend: { live: true },
    };
    const plot = new uPlot(opts, values, box);
    plot.over.addEventListener("click", () => {
      const idx = plot.cursor.idx;
      if (idx !== null && idx !== undefined && PV.source.views.includes("samples")) go("samples", { step: data.steps[idx] });
    });
    plot.over.dataset.steps = data.steps.length;
    plots.push(plot);
    PV.plots = plots;
  }
  const warned = Object.entries(data.warnings);
  if (warned.length) {
    wrap.appendChild(h("h2", {}, "Monitor flags"));
    wrap.appendChild(h("table", { class: "warnings" }, warned.map(([step, texts]) => h("tr", { class: "clickable", onclick: () => go("samples", { step, flagged: 1 }) },
      h("td", {}, "step " + step), h("td", {}, texts.join("; "))))));
  }
  if (PV.source.summary) wrap.appendChild(h("details", {}, h("summary", {}, "summary.json"), h("pre", {}, pretty(PV.source.summary))));
  return wrap;
};

// -- samples: filters, a page of rows, a pager ------------------------------------------------------------
const FILTERS = ["step", "group", "status", "component", "lo", "hi", "flagged", "episodes"];

PV.views.samples = async (rest, params) => {
  const page = Number(params.page || 0);
  const query = Object.fromEntries(FILTERS.map((k) => [k, params[k]]));
  const data = await api("/api/samples", { ...query, page, size: 50 });
  const field = (name, el) => h("label", {}, name, el);
  const input = (id, value, attrs) => h("input", { id, value: value || "", ...attrs });
  const statusSelect = h("select", { id: "f-status" }, ["", "ok", "abstain", "error", "timeout", "unreadable"].map((s) =>
    h("option", { value: s, selected: (params.status || "") === s }, s || "any")));
  const componentSelect = h("select", { id: "f-component" }, ["reward"].concat(data.components).map((c) =>
    h("option", { value: c, selected: (params.component || "reward") === c }, c)));
  const apply = () => go("samples", {
    step: document.getElementById("f-step").value, group: document.getElementById("f-group").value, status: statusSelect.value,
    component: componentSelect.value === "reward" ? "" : componentSelect.value, lo: document.getElementById("f-lo").value,
    hi: document.getElementById("f-hi").value, flagged: document.getElementById("f-flagged").checked ? 1 : "",
    episodes: document.getElementById("f-episodes").checked ? 1 : "",
  });
  const onEnter = (event) => { if (event.key === "Enter") apply(); };
  const filters = h("div", { class: "filters", onkeydown: onEnter },
    field("step", input("f-step", params.step, { type: "number" })), field("group", input("f-group", params.group, { type: "text" })),
    field("status", statusSelect), field("range of", componentSelect),
    field("min", input("f-lo", params.lo, { type: "number", step: "any" })), field("max", input("f-hi", params.hi, { type: "number", step: "any" })),
    h("label", {}, "flagged", h("input", { id: "f-flagged", type: "checkbox", checked: !!params.flagged })),
    h("label", {}, "episodes", h("input", { id: "f-episodes", type: "checkbox", checked: !!params.episodes })),
    h("button", { id: "f-apply", onclick: apply }, "Filter"), h("button", { onclick: () => go("samples") }, "Clear"));
  const countText = (d) => d.total + " rows" + (d.done ? "" : " so far (still indexing the file…)")
    + (d.total > 50 ? " · page " + (page + 1) + " of " + Math.ceil(d.total / 50) : "");
  const count = h("p", { id: "count" }, countText(data));
  // While the file is being indexed, only the count is refreshed: the filters a person is typing stay put.
  const hash = location.hash;
  const refresh = async () => {
    if (location.hash !== hash || !document.body.contains(count)) return;
    const again = await api("/api/samples", { ...query, page, size: 1 });
    count.textContent = countText(again);
    if (!again.done) setTimeout(refresh, 1500);
  };
  if (!data.done) setTimeout(refresh, 1500);
  const table = h("table", { id: "samples-table" },
    h("thead", {}, h("tr", {}, ["#", "step", "group", "status", "reward", "components", "answer", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, data.rows.map((r) => h("tr", { class: "clickable", "data-index": r.index, "data-step": r.step, "data-status": r.status,
      onclick: () => go("sample/" + r.index) },
    h("td", {}, r.index), h("td", {}, fmt(r.step)),
    h("td", {}, r.group !== null ? h("a", { onclick: (e) => { e.stopPropagation(); go("group", { key: r.group }); } }, r.group.slice(0, 24)) : "–"),
    h("td", {}, statusBadge(r.status)), h("td", {}, fmt(r.reward)),
    h("td", { class: "hint" }, Object.entries(r.components || {}).map(([k, v]) => k + " " + fmt(v)).join(", ")),
    h("td", {}, r.episode ? h("span", { class: "hint" }, r.episode.turns + " turns, " + r.episode.tool_calls + " tool calls · ") : null, r.answer),
    h("td", {}, r.flags.length ? h("span", { class: "flag" }, "flagged") : null)))));
  const pager = h("p", {},
    page > 0 ? h("button", { onclick: () => go("samples", { ...params, page: page - 1 }) }, "← previous") : null, " ",
    (page + 1) * 50 < data.total ? h("button", { id: "next", onclick: () => go("samples", { ...params, page: page + 1 }) }, "next →") : null);
  return h("div", {}, filters, count, table, pager);
};

PV.views.sample = async (rest) => {
  const data = await api("/api/samples/" + Number(rest[0]));
  return renderSample(data.index, data.row, data.step_warnings);
};

PV.views.group = async (rest, params) => renderGroup(await api("/api/group", { key: params.key }));

// a reward given as path/to/file.py:function reads as file.py:function
function short(name) { return typeof name === "string" ? name.replace(/^.*\//, "") : name; }

// -- disagreements: where two rewards part, most changed training signal first -------------------------
PV.views.disagreements = async () => {
  const data = await api("/api/disagreements");
  return h("div", {},
    h("h2", {}, "Reward pairs"),
    h("table", {}, h("tr", {}, ["report", "A", "B", "kappa", "spearman", "agreement", "groups whose advantages change sign"].map((t) => h("th", {}, t))),
      data.pairs.map((p) => h("tr", {}, [p.report, short(p.a), short(p.b), fmt(p.kappa), fmt(p.spearman), fmt(p.agreement), fmt(p.advantage_sign_changes)].map((v) => h("td", {}, v))))),
    h("h2", {}, "Disagreements, most changed training signal first"),
    h("table", { id: "disagreements" }, h("tr", {}, ["Δ signal", "A", "score A", "adv A", "B", "score B", "adv B", "completion", "reference", "group"].map((t) => h("th", {}, t))),
      data.disagreements.map((d) => h("tr", { "data-change": d.signal_change },
        h("td", {}, h("b", {}, fmt(d.signal_change)), h("span", { class: "hint" }, " " + d.measure)),
        h("td", { title: d.a }, short(d.a)), h("td", {}, fmt(d.score_a)), h("td", {}, d.advantages ? signed(d.advantages[d.a]) : "–"),
        h("td", { title: d.b }, short(d.b)), h("td", {}, fmt(d.score_b)), h("td", {}, d.advantages ? signed(d.advantages[d.b]) : "–"),
        h("td", {}, h("pre", {}, d.completion || "")), h("td", {}, h("pre", {}, pretty(d.reference))),
        h("td", {}, d.group && PV.source.views.includes("samples") ? h("a", { onclick: () => go("group", { key: d.group }) }, d.group) : (d.group || "–"))))));
};

// -- audit: families with their failing probes; the hack matrix with a click through to the probe -------
PV.views.audit = async () => {
  const data = await api("/api/audit");
  const out = h("div", {});
  for (const report of data.reports) {
    out.appendChild(h("h2", {}, "Audit of ", h("code", {}, report.reward), " — ", h("span", { class: report.verdict }, report.verdict)));
    out.appendChild(h("p", { class: "hint" }, report.usable_tasks + " of " + report.tasks + " tasks usable"));
    out.appendChild(h("ul", { class: "reasons" }, (report.reasons || []).map((r) => h("li", {}, r))));
    const limits = report.settings || {};
    const bad = (f) => (f.exploit_rate || 0) > (limits.max_exploit ?? 0) || (f.false_negative_rate || 0) > (limits.max_false_negative ?? 0.01);
    const detail = h("div", { class: "probe-detail" });
    out.appendChild(h("table", { class: "families" }, h("tr", {}, ["family", "exploit rate", "false negatives", "", ""].map((t) => h("th", {}, t))),
      report.families.map((f) => h("tr", { class: "clickable", "data-family": f.family, onclick: () => detail.replaceChildren(h("h2", {}, f.family),
        ...(f.examples.length ? f.examples.map(probeCard) : [h("p", { class: "hint" }, "no probe got through")])) },
      h("td", {}, f.family), h("td", {}, f.exploit_probes ? fmt(f.exploit_rate) + " (" + f.exploits + "/" + f.exploit_probes + ")" : "–"),
      h("td", {}, f.correct_probes ? fmt(f.false_negative_rate) + " (" + f.false_negatives + "/" + f.correct_probes + ")" : "–"),
      h("td", { class: bad(f) ? "FAIL" : "PASS" }, bad(f) ? "FAIL" : "pass"),
      h("td", {}, f.examples.length ? h("a", {}, f.examples.length + " example(s)") : "")))));
    out.appendChild(detail);
  }
  for (const matrix of data.matrices) out.appendChild(renderMatrix(matrix));
  return out;
};

function probeCard(example) {
  return h("div", { class: "card probe" }, h("b", {}, example.type || example.kind || ""), " · ", example.note || example.why || "",
    h("div", {}, "score ", h("b", {}, fmt(example.score)), example.baseline !== undefined ? " vs the correct answer's " + fmt(example.baseline) : ""),
    example.prompt ? [h("div", { class: "role" }, "prompt"), renderPrompt(example.prompt)] : null,
    h("div", { class: "role" }, Array.isArray(example.messages) ? "episode" : "completion"),
    Array.isArray(example.messages) ? renderMessages(example.messages) : h("pre", { class: "probe-completion" }, example.completion || ""),
    example.reference !== undefined ? h("div", { class: "hint" }, "reference: " + pretty(example.reference)) : null);
}

function renderMatrix(matrix) {
  const detail = h("div", { class: "cell-detail" });
  const cellOf = {};
  matrix.cells.forEach((c) => { cellOf[c.hack + "\u0000" + c.reward] = c; });
  const show = (cell) => detail.replaceChildren(h("h2", {}, cell.hack + " against " + cell.reward + " — " + cell.status),
    h("p", {}, (cell.why || "") + " · " + cell.exploits + " of " + cell.probes + " probes got through"),
    cell.example ? probeCard({ ...cell.example, type: cell.kind, note: "the probe that got through" }) : h("p", { class: "hint" }, "no example"));
  const table = h("table", { class: "matrix" }, h("tr", {}, h("th", {}, "hack \\ reward"), matrix.rewards.map((r) => h("th", {}, r))),
    matrix.hacks.map((hack) => h("tr", {}, h("th", {}, hack), matrix.rewards.map((reward) => {
      const cell = cellOf[hack + "\u0000" + reward];
      if (!cell) return h("td", {}, "");
      return h("td", { class: "cell " + cell.status, "data-hack": hack, "data-reward": reward, title: cell.why || "", onclick: () => show(cell) },
        cell.status === "n/a" ? "n/a" : fmt(cell.rate, 2));
    }))));
  const negatives = Object.entries(matrix.false_negatives);
  return h("div", {}, h("h2", {}, "Hack matrix (" + matrix.name + ")"), h("p", { class: "hint" }, "Share of probes each reward credited; click a cell for the probe that got through."),
    table, detail,
    negatives.length ? [h("h2", {}, "False negatives (correct answers not credited)"), h("table", {}, h("tr", {}, ["reward", "missed", "of", "rate"].map((t) => h("th", {}, t))),
      negatives.map(([reward, fn]) => h("tr", {}, h("td", {}, reward), h("td", {}, fn.missed), h("td", {}, fn.n), h("td", {}, fmt(fn.rate)))))] : null);
}

// -- eval: subsets x rewards; a cell lists the items that reward got wrong in that subset ---------------
PV.views.eval = async (rest, params) => {
  if (rest[0] === "items") return evalItems(params);
  const data = await api("/api/eval");
  return h("div", {}, h("h2", {}, "Accuracy by subset"), h("p", { class: "hint" }, "Click a cell for the items that reward got wrong."),
    h("table", { class: "evals" },
      h("tr", {}, h("th", {}, "subset"), data.reports.map((r) => h("th", {}, r.reward + " (" + r.suite + ", " + r.name + ")"))),
      h("tr", {}, h("th", {}, "overall"), data.reports.map((r) => h("td", {}, h("b", {}, fmt(r.overall))))),
      data.subsets.map((subset) => h("tr", {}, h("td", {}, subset), data.reports.map((r) => h("td", {
        class: r.items ? "clickable" : "", "data-report": r.id, "data-subset": subset,
        onclick: r.items ? () => go("eval/items", { report: r.id, subset }) : undefined,
      }, fmt(r.subsets[subset])))))));
};

async function evalItems(params) {
  const page = Number(params.page || 0);
  const data = await api("/api/eval/items", { report: params.report, subset: params.subset, wrong: true, page, size: 50 });
  const answers = (texts, scores) => (texts || []).map((t, i) => h("div", {}, h("span", { class: "hint" }, "score " + fmt((scores || [])[i])), h("pre", {}, t)));
  return h("div", {}, h("p", {}, h("a", { onclick: () => go("eval") }, "← all subsets")),
    h("h2", {}, data.total + " items wrong in " + params.subset),
    data.rows.map((item) => h("div", { class: "card eval-item" }, h("div", { class: "role" }, "row " + item.row), renderPrompt(item.prompt),
      item.steps ? h("p", {}, "label " + item.label + ", predicted " + item.prediction)
        : h("div", { class: "side" }, h("div", {}, h("div", { class: "role" }, "chosen"), answers(item.chosen, item.chosen_scores)),
          h("div", {}, h("div", { class: "role" }, "rejected"), answers(item.rejected, item.rejected_scores))))),
    (page + 1) * 50 < data.total ? h("button", { onclick: () => go("eval/items", { ...params, page: page + 1 }) }, "next →") : null);
}
