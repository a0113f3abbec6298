// payoff view: one sample or episode, and a prompt group's members side by side.
"use strict";

function statusBadge(status) { return h("span", { class: "status " + (status || "none") }, status || "no status"); }

function signed(value) {
  if (typeof value !== "number") return h("span", {}, "–");
  return h("span", { class: value > 0 ? "pos" : value < 0 ? "neg" : "" }, (value > 0 ? "+" : "") + value.toFixed(3));
}

function kvTable(object, cls) {
  const entries = Object.entries(object || {});
  if (!entries.length) return h("p", { class: "hint" }, "none");
  return h("table", { class: "kv " + (cls || "") },
    entries.map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, typeof v === "object" && v !== null ? h("pre", {}, pretty(v)) : fmt(v, 4)))));
}

function parseArguments(text) {
  if (typeof text !== "string") return text;
  try { return JSON.parse(text); } catch (e) { return text; }
}

function contentText(content) {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((part) => part.text || (part.type ? "[" + part.type + "]" : pretty(part))).join("\n");
  return pretty(content);
}

// The turns of an episode: assistant text, tool calls with their arguments, tool results (named by
// the call they answer), and user messages after the first assistant turn shown as feedback.
function renderMessages(messages, turnRewards) {
  const callNames = {};
  let assistantTurn = 0;
  let seenAssistant = false;
  return h("div", { class: "episode" }, messages.map((message, index) => {
    const role = message.role || "?";
    let kind = role;
    let label = role;
    if (role === "user" && seenAssistant) { kind = "feedback"; label = "user · feedback"; }
    const body = [];
    if (role === "assistant") {
      seenAssistant = true;
      const reward = Array.isArray(turnRewards) ? turnRewards[assistantTurn] : undefined;
      label = "assistant · turn " + (assistantTurn + 1) + (reward !== undefined ? " · turn reward " + fmt(reward) : "");
      assistantTurn += 1;
      const text = contentText(message.content);
      if (text) body.push(h("pre", { class: "assistant-text" }, text));
      for (const call of message.tool_calls || []) {
        const fn = call.function || {};
        callNames[call.id] = fn.name;
        body.push(h("div", { class: "tool-call", "data-call": call.id },
          h("span", { class: "role" }, "tool call "), h("span", { class: "tool-name" }, fn.name || "?"),
          h("span", { class: "hint" }, "  id " + (call.id || "?")),
          h("pre", { class: "tool-args" }, pretty(parseArguments(fn.arguments)))));
      }
    } else if (role === "tool") {
      label = "tool result · " + (callNames[message.tool_call_id] || message.name || "?") + " (" + (message.tool_call_id || "") + ")";
      body.push(h("pre", { class: "tool-result" }, contentText(message.content)));
    } else {
      body.push(h("pre", {}, contentText(message.content)));
    }
    return h("div", { class: "msg " + kind, "data-message": index }, h("div", { class: "role" }, label), body);
  }));
}

function renderPrompt(prompt) {
  if (Array.isArray(prompt)) return renderMessages(prompt);
  return h("pre", { class: "prompt" }, contentText(prompt));
}

const SHOWN = new Set(["prompt", "completion", "messages", "reference", "reward", "score", "status", "components", "info", "step",
  "group", "advantage", "flags", "monitor_flags", "meta", "turn_rewards", "error"]);

function renderSample(number, row, stepWarnings) {
  const info = row.info || {};
  // a trainer's episode rows keep turn_rewards and error at the top; `payoff score` rows, in info
  const turnRewards = info.turn_rewards || row.turn_rewards;
  const error = info.error || row.error;
  const parts = [];
  parts.push(h("div", { class: "card" },
    h("b", {}, "sample " + number + " "), statusBadge(row.status),
    " reward ", h("b", { class: "reward" }, fmt(row.reward !== undefined ? row.reward : row.score, 4)),
    row.advantage !== undefined ? [" advantage ", signed(row.advantage)] : null,
    row.step !== undefined ? [" · step ", h("a", { onclick: () => go("samples", { step: row.step }) }, row.step)] : null,
    row.group !== undefined && row.group !== null ? [" · group ", h("a", { class: "group-link", onclick: () => go("group", { key: String(row.group) }) }, String(row.group))] : null,
    (row.flags || row.monitor_flags || []).length ? [" ", h("span", { class: "flag" }, "flagged: " + (row.flags || row.monitor_flags).join(", "))] : null,
    stepWarnings && stepWarnings.length ? h("div", { class: "flag" }, "monitor at this step: " + stepWarnings.join("; ")) : null,
    error ? h("pre", { class: "neg error-text" }, String(error)) : null));
  parts.push(h("h2", {}, "Prompt"), renderPrompt(row.prompt));
  if (Array.isArray(row.messages)) {
    parts.push(h("h2", {}, "Episode"), renderMessages(row.messages, turnRewards));
  } else {
    parts.push(h("h2", {}, "Completion"), h("pre", { class: "completion card" }, contentText(row.completion)));
  }
  parts.push(h("div", { class: "side" },
    h("div", {}, h("h2", {}, "Reference"), h("pre", { class: "card reference" }, row.reference === undefined ? "–" : pretty(row.reference))),
    h("div", {}, h("h2", {}, "Components"), kvTable(row.components, "components"))));
  parts.push(h("h2", {}, "Outcome info"), kvTable(info, "info"));
  const rest = Object.fromEntries(Object.entries(row).filter(([k]) => !SHOWN.has(k)));
  if (row.meta && Object.keys(row.meta).length) rest.meta = row.meta;
  if (Object.keys(rest).length) parts.push(h("h2", {}, "Other fields"), kvTable(rest));
  return h("div", { class: "sample" }, parts);
}

function renderGroup(data) {
  return h("div", {},
    h("h2", {}, "Group " + data.group + " · " + data.members.length + " members"),
    h("p", { class: "hint" }, "advantages: " + data.advantage_source),
    h("div", { class: "members" }, data.members.map((member) => {
      const row = member.row;
      const answer = Array.isArray(row.messages) ? renderMessages(row.messages, (row.info || {}).turn_rewards || row.turn_rewards)
        : h("pre", {}, contentText(row.completion));
      return h("div", { class: "card member", "data-index": member.index },
        h("a", { onclick: () => go("sample/" + member.index) }, "sample " + member.index), " ", statusBadge(row.status),
        h("div", {}, "reward ", h("b", {}, fmt(row.reward !== undefined ? row.reward : row.score, 4)), " · advantage ",
          h("b", { class: "advantage" }, signed(member.advantage))),
        row.components && Object.keys(row.components).length ? kvTable(row.components, "components") : null,
        answer);
    })));
}
