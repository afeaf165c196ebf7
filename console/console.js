// Conclave's web console. Plain JavaScript, no dependencies: every call goes through the public
// API with the signed-in user's bearer token, so it sees exactly what that user may see.
"use strict";

const state = { token: null, me: null, conversationId: null, auditBefore: null, reports: [] };
const $ = (selector, root = document) => root.querySelector(selector);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// ---- API ---------------------------------------------------------------------------------------

class APIError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: `Bearer ${state.token}` }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    if (response.status === 401 && state.me) signOut("Your session has expired: sign in again.");
    throw new APIError(response.status, body);
  }
  return options.raw ? response : response.json();
}

// ---- Sign in -----------------------------------------------------------------------------------

async function signIn(token) {
  state.token = token.trim();
  try {
    state.me = await api("/v1/me");
  } catch (error) {
    state.token = null;
    state.me = null;
    $("#sign-in-error").textContent = error.status === 401 ? "That token was not accepted." : error.message;
    return false;
  }
  sessionStorage.setItem("conclave.token", state.token);
  $("#sign-in-error").textContent = "";
  $("#whoami").textContent = `${state.me.user} · ${state.me.roles.join(", ")}`;
  $("#sign-out").hidden = false;
  $("#tabs").hidden = false;
  $("#tab-audit").hidden = !state.me.permissions.audit;
  await loadWorkflows();
  show("chat");
  return true;
}

function signOut(message) {
  sessionStorage.removeItem("conclave.token");
  state.token = null;
  state.me = null;
  state.conversationId = null;
  $("#messages").replaceChildren();
  $("#tabs").hidden = true;
  $("#sign-out").hidden = true;
  $("#whoami").textContent = "";
  $("#sign-in-error").textContent = message || "";
  show("sign-in");
}

function show(view) {
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${view}`;
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === view);
  if (view === "conversations") loadConversations();
  if (view === "evaluation") loadReports();
  if (view === "audit") loadAudit(true);
}

// ---- Chat --------------------------------------------------------------------------------------

async function loadWorkflows() {
  const models = await api("/v1/models");
  const picker = $("#workflow");
  picker.replaceChildren();
  for (const model of models.data.filter((m) => m.id !== "minilm")) {
    picker.append(el("option", { value: model.id, title: model.description || "" }, model.id));
  }
  if ([...picker.options].some((o) => o.value === "conclave/full")) picker.value = "conclave/full";
}

function newConversation() {
  state.conversationId = null;
  $("#conversation-id").textContent = "";
  $("#messages").replaceChildren();
  $("#source-panel").hidden = true;
}

function setConversation(id) {
  state.conversationId = id;
  $("#conversation-id").textContent = id ? `conversation ${id}` : "";
}

function addMessage(role, text) {
  const node = el("div", { class: `message ${role}` }, el("div", { class: "who" }, role === "user" ? "You" : "Conclave"),
    el("div", { class: "text" }, text || ""));
  $("#messages").append(node);
  node.scrollIntoView({ block: "end" });
  return node;
}

// Answer text with its [n] markers as links to the cited passage.
function renderAnswer(node, text, citations) {
  const target = $(".text", node);
  target.replaceChildren();
  const byIndex = new Map((citations || []).map((c) => [c.index, c]));
  let last = 0;
  for (const match of text.matchAll(/\[(\d+)\]/g)) {
    const citation = byIndex.get(Number(match[1]));
    if (!citation) continue;
    target.append(text.slice(last, match.index));
    target.append(el("a", { class: "cite", href: "#", "data-index": citation.index,
      onclick: (event) => { event.preventDefault(); openCitation(citation); } }, match[0]));
    last = match.index + match[0].length;
  }
  target.append(text.slice(last));
}

function renderCitations(node, citations) {
  if (!citations || citations.length === 0) return;
  const list = el("div", { class: "citations" });
  for (const citation of citations) {
    list.append(el("button", { class: "citation", type: "button", "data-source": citation.source_id,
      onclick: () => openCitation(citation) },
    el("b", {}, `[${citation.index}] `), `${citation.title} (${citation.source_id})`));
  }
  node.append(list);
}

// The workflow's steps on one time axis: where each started and how long it took.
function renderTimeline(trace) {
  const box = el("div", { class: "timeline" });
  const end = Math.max(1, ...trace.map((s) => (s.start_milliseconds || 0) + s.milliseconds));
  for (const step of trace) {
    const start = step.start_milliseconds || 0;
    const tokens = (step.prompt_tokens || 0) + (step.completion_tokens || 0);
    const info = [`${step.milliseconds.toFixed(0)} ms`, tokens ? `${step.prompt_tokens}+${step.completion_tokens} tokens` : null,
      step.attempts > 1 ? `${step.attempts} attempts` : null].filter(Boolean).join(" · ");
    const bar = el("div", { class: `bar ${step.role}`, title: step.summary });
    bar.style.left = `${(100 * start / end).toFixed(2)}%`;
    bar.style.width = `${Math.max(0.3, 100 * step.milliseconds / end).toFixed(2)}%`;
    const label = el("span", {}, el("b", {}, step.role), ` ${step.step}`);
    const row = el("div", { class: `step ${step.status}`, "data-role": step.role }, label, el("div", { class: "track" }, bar),
      el("span", {}, info));
    box.append(row);
    const verdict = step.role === "validator" ? /answerable=(true|false)/.exec(step.summary) : null;
    box.append(el("div", { class: "summary" },
      verdict ? el("span", { class: `verdict ${verdict[1] === "true" ? "ok" : "no"}` },
        verdict[1] === "true" ? "validated: answerable" : "validated: not answerable") : null,
      verdict ? " " : null, step.summary));
  }
  box.append(el("div", { class: "muted" }, `total ${end.toFixed(0)} ms`));
  return box;
}

function finishAnswer(node, text, conclave, usage) {
  node.classList.remove("streaming");
  if (!conclave) return;
  renderAnswer(node, text, conclave.citations);
  renderCitations(node, conclave.citations);
  const timeline = renderTimeline(conclave.trace || []);
  timeline.hidden = true;
  const toggle = el("button", { class: "show-trace", type: "button",
    onclick: () => { timeline.hidden = !timeline.hidden; toggle.textContent = timeline.hidden ? "Show trace" : "Hide trace"; } },
  "Show trace");
  const facts = [conclave.workflow && `workflow ${conclave.workflow}`, `config v${conclave.config_version}`,
    usage && `${usage.total_tokens} tokens`, conclave.run_id].filter(Boolean).join(" · ");
  node.append(el("div", { class: "actions" }, toggle, el("span", { class: "muted" }, facts)), timeline);
}

// Reads the server-sent events of a streamed completion, rendering text as it arrives.
async function ask(question) {
  addMessage("user", question);
  const node = addMessage("assistant", "");
  node.classList.add("streaming");
  const body = { model: $("#workflow").value, stream: true, stream_options: { include_usage: true },
    messages: [{ role: "user", content: question }] };
  if (state.conversationId) body.metadata = { conversation_id: state.conversationId };
  let text = "";
  let conclave = null;
  let usage = null;
  let failed = null;
  let done = false;
  try {
    const response = await api("/v1/chat/completions", { method: "POST", raw: true,
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") { done = true; continue; }
          const chunk = JSON.parse(data);
          if (chunk.error) { failed = chunk.error.message; continue; }
          if (chunk.conversation_id && chunk.conversation_id !== state.conversationId) setConversation(chunk.conversation_id);
          for (const choice of chunk.choices || []) {
            if (choice.delta && choice.delta.content) {
              text += choice.delta.content;
              $(".text", node).textContent = text;
            }
          }
          if (chunk.conclave) conclave = chunk.conclave;
          if (chunk.usage) usage = chunk.usage;
        }
      }
    }
  } catch (error) {
    failed = error.message;
  }
  if (!done && !failed) failed = "The answer was cut off before it ended.";
  finishAnswer(node, text, conclave, usage);
  node.dataset.state = failed ? "failed" : "complete";
  if (failed) {
    node.classList.remove("streaming");
    node.append(el("div", { class: "failure", role: "alert" }, failed));
  }
}

// ---- Sources -----------------------------------------------------------------------------------

async function openCitation(citation) {
  const panel = $("#source-panel");
  panel.hidden = false;
  panel.dataset.source = citation.source_id;
  $("#source-title").textContent = `[${citation.index}] ${citation.title}`;
  $("#source-meta").textContent = citation.source_id;
  const passages = $("#source-passages");
  passages.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  // Database rows and API records are not stored documents: their passage is the citation's.
  if (/^(db|api):/.test(citation.source_id)) {
    passages.replaceChildren(el("div", { class: "passage cited" }, citation.snippet),
      el("p", { class: "muted" }, "A record read through a connector at answer time."));
    return;
  }
  try {
    const document = await api(`/v1/documents/${encodeURIComponent(citation.source_id)}`);
    $("#source-meta").textContent = [document.id, document.department, document.classification,
      document.effective_date && `effective ${document.effective_date}`,
      document.superseded_by && `superseded by ${document.superseded_by}`].filter(Boolean).join(" · ");
    const cited = citedPassage(document.passages, citation);
    passages.replaceChildren(...document.passages.map((p) =>
      el("div", { class: `passage${p === cited ? " cited" : ""}`, "data-id": p.id },
        p.section ? el("span", { class: "section" }, p.section) : null, p.text)));
    const target = $(".passage.cited", passages);
    if (target) target.scrollIntoView({ block: "center" });
  } catch (error) {
    passages.replaceChildren(el("p", { class: "error" }, error.message));
  }
}

// The passage the citation quotes: the one holding the snippet's opening words, in its section
// when the citation names one.
function citedPassage(passages, citation) {
  const normalise = (s) => s.replace(/\s+/g, " ").trim().toLowerCase();
  const probe = normalise(citation.snippet.replace(/\.\.\.$/, "")).slice(0, 80);
  const candidates = citation.section ? passages.filter((p) => p.section === citation.section) : passages;
  return candidates.find((p) => normalise(p.text).includes(probe))
    || passages.find((p) => normalise(p.text).includes(probe.slice(0, 40)))
    || candidates[0] || null;
}

// ---- Conversations -----------------------------------------------------------------------------

async function loadConversations() {
  const list = $("#conversation-list");
  list.replaceChildren(el("li", { class: "muted" }, "Loading…"));
  try {
    const conversations = await api("/v1/conversations");
    list.replaceChildren();
    if (conversations.data.length === 0) list.append(el("li", { class: "muted" }, "No conversations yet."));
    for (const c of conversations.data) {
      list.append(el("li", { class: "conversation", "data-id": c.id, onclick: () => openConversation(c.id) },
        el("div", {}, c.title || "(untitled)"),
        el("div", { class: "muted" }, `${new Date(c.updated_at * 1000).toLocaleString()} · ${c.message_count} messages · ${c.id}`)));
    }
  } catch (error) {
    list.replaceChildren(el("li", { class: "error" }, error.message));
  }
}

async function openConversation(id) {
  const conversation = await api(`/v1/conversations/${encodeURIComponent(id)}`);
  newConversation();
  setConversation(conversation.id);
  for (const message of conversation.messages) {
    if (message.role === "user" || message.role === "assistant") addMessage(message.role, message.content);
  }
  show("chat");
}

// ---- Audit -------------------------------------------------------------------------------------

async function verifyChain() {
  const status = $("#chain-status");
  status.className = "status";
  status.textContent = "Verifying…";
  try {
    const result = await api("/admin/audit/verify");
    status.className = `status ${result.valid ? "valid" : "invalid"}`;
    status.textContent = result.valid
      ? `Chain valid: ${result.records} records up to #${result.last_seq}, ${result.checkpoints} signed anchors.`
      : `Chain INVALID at record #${result.failed_seq}: ${result.reason}`;
  } catch (error) {
    status.className = "status invalid";
    status.textContent = error.message;
  }
}

async function loadAudit(fresh) {
  const body = $("#audit-table tbody");
  if (fresh) {
    state.auditBefore = null;
    body.replaceChildren();
    $("#audit-detail").hidden = true;
    verifyChain();
  }
  const query = state.auditBefore ? `?limit=50&before=${state.auditBefore}` : "?limit=50";
  try {
    const page = await api(`/admin/audit${query}`);
    for (const entry of page.data) {
      const record = (entry.record && entry.record.record) || {};
      const decisions = (record.decisions || []).map((d) => `${d.allowed ? "allow" : "deny"} ${d.point}`).join(", ");
      body.append(el("tr", { "data-seq": entry.seq, onclick: () => {
        const detail = $("#audit-detail");
        detail.hidden = false;
        detail.textContent = JSON.stringify(entry, null, 2);
      } }, el("td", {}, entry.seq), el("td", {}, new Date(entry.time * 1000).toLocaleString()), el("td", {}, entry.type),
      el("td", {}, record.user || ""), el("td", {}, record.status || ""), el("td", {}, record.workflow || ""), el("td", {}, decisions)));
    }
    state.auditBefore = page.next_before || null;
    $("#audit-older").hidden = !page.next_before;
  } catch (error) {
    body.append(el("tr", {}, el("td", { colspan: 7, class: "error" }, error.message)));
  }
}

// ---- Evaluation reports ------------------------------------------------------------------------

async function loadReports() {
  const picker = $("#report-picker");
  try {
    const reports = await api("/v1/evaluations");
    state.reports = reports.data;
    picker.replaceChildren(...reports.data.map((r) => el("option", { value: r.id }, r.id)));
    if (reports.data.length === 0) {
      $("#report").replaceChildren(el("p", { class: "muted" }, "No evaluation report yet: run `make study` or `conclave eval`."));
      return;
    }
    await showReport(reports.data[0].id);
  } catch (error) {
    $("#report").replaceChildren(el("p", { class: "error" }, error.message));
  }
}

async function showReport(id) {
  const box = $("#report");
  box.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  const report = await api(`/v1/evaluations/${encodeURIComponent(id)}`);
  const parts = [el("p", { class: "muted" }, `${report.id} · ${new Date(report.created_at * 1000).toLocaleString()}`)];
  for (const name of report.figures) {
    const image = el("img", { alt: name });
    parts.push(el("figure", { "data-name": name }, image, el("figcaption", { class: "muted" }, name)));
    // Figures need the bearer token too: fetched, then shown from a blob URL.
    api(`/v1/evaluations/${encodeURIComponent(report.id)}/files/${encodeURIComponent(name)}`, { raw: true })
      .then((response) => response.blob())
      .then((blob) => { image.src = URL.createObjectURL(blob); })
      .catch((error) => image.replaceWith(el("p", { class: "error" }, error.message)));
  }
  // Figures first, then the tables and the analysis.
  for (const document of report.documents) {
    const section = el("div", { class: "report-document", "data-name": document.name });
    section.innerHTML = markdown(document.markdown);
    parts.push(section);
  }
  box.replaceChildren(...parts);
}

// A small Markdown subset (headings, tables, lists, paragraphs, code, bold, italics), enough for
// the reports the harness writes. Text is escaped before any markup is added.
function markdown(source) {
  const escape = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const inline = (s) => escape(s)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[\s(])_([^_]+)_(?=[\s).,;:]|$)/g, "$1<em>$2</em>");
  const cells = (line) => line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
  const lines = source.split("\n");
  const html = [];
  let paragraph = [];
  const flush = () => { if (paragraph.length) { html.push(`<p>${inline(paragraph.join(" "))}</p>`); paragraph = []; } };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) { flush(); html.push(`<h${heading[1].length}>${inline(heading[2])}</h${heading[1].length}>`); continue; }
    if (line.trim().startsWith("|") && i + 1 < lines.length && /^\s*\|?\s*:?-{3,}/.test(lines[i + 1])) {
      flush();
      const head = cells(line);
      i += 1;
      const rows = [];
      while (i + 1 < lines.length && lines[i + 1].trim().startsWith("|")) rows.push(cells(lines[++i]));
      html.push("<table><thead><tr>" + head.map((c) => `<th>${inline(c)}</th>`).join("") + "</tr></thead><tbody>"
        + rows.map((r) => "<tr>" + r.map((c) => `<td>${inline(c)}</td>`).join("") + "</tr>").join("") + "</tbody></table>");
      continue;
    }
    if (/^```/.test(line)) {
      flush();
      const code = [];
      while (i + 1 < lines.length && !/^```/.test(lines[i + 1])) code.push(lines[++i]);
      i += 1;
      html.push(`<pre>${escape(code.join("\n"))}</pre>`);
      continue;
    }
    const item = /^\s*(?:[-*]|\d+\.)\s+(.*)$/.exec(line);
    if (item) {
      flush();
      const items = [item[1]];
      while (i + 1 < lines.length && /^\s*(?:[-*]|\d+\.)\s+/.test(lines[i + 1])) items.push(/^\s*(?:[-*]|\d+\.)\s+(.*)$/.exec(lines[++i])[1]);
      html.push("<ul>" + items.map((t) => `<li>${inline(t)}</li>`).join("") + "</ul>");
      continue;
    }
    if (line.trim() === "") flush(); else paragraph.push(line.trim());
  }
  flush();
  return html.join("\n");
}

// ---- Wiring ------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#sign-in-form").addEventListener("submit", (event) => { event.preventDefault(); signIn($("#token").value); });
  $("#sign-out").addEventListener("click", () => signOut());
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));
  $("#new-conversation").addEventListener("click", newConversation);
  $("#source-close").addEventListener("click", () => { $("#source-panel").hidden = true; });
  $("#ask-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = $("#question").value.trim();
    if (!question) return;
    $("#question").value = "";
    $("#send").disabled = true;
    try { await ask(question); } finally { $("#send").disabled = false; }
  });
  $("#question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("#ask-form").requestSubmit(); }
  });
  $("#verify-chain").addEventListener("click", verifyChain);
  $("#audit-older").addEventListener("click", () => loadAudit(false));
  $("#report-picker").addEventListener("change", (event) => showReport(event.target.value));
  const saved = sessionStorage.getItem("conclave.token");
  if (saved) signIn(saved); else show("sign-in");
});
