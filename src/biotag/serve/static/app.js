// The biotag web page: send the text to the service, show its entities in place.
// Plain browser JavaScript, no build step and nothing loaded from elsewhere.
"use strict";

// Stable colours for biotag's unified types and the bundled model's protein; other types get one from the spare list.
const TYPE_HUES = {
  gene: 210, chemical: 130, disease: 0, species: 35, cell_line: 280,
  cell_type: 320, dna: 185, rna: 60, variant: 245, protein: 100,
};
const SPARE_HUES = [15, 160, 300, 90, 230, 340, 110, 200, 50, 265];

function typeHue(type, spareIndex) {
  const key = type.toLowerCase();
  return key in TYPE_HUES ? TYPE_HUES[key] : SPARE_HUES[spareIndex % SPARE_HUES.length];
}

function colourStyle(element, hue) {
  element.style.setProperty("--ent-bg", `hsla(${hue}, 85%, 55%, 0.22)`);
  element.style.setProperty("--ent-line", `hsl(${hue}, 75%, 38%)`);
}

// -- layout of possibly nested, overlapping and discontinuous entities -------------
// Every span of every entity is a fragment. Fragments are nested into a tree (sorted by
// start, longest first); a fragment that crosses the end of the one enclosing it is cut
// there and the rest goes on as a fragment of its own, so any overlap can be shown with
// properly nested elements.
function fragmentTree(doc) {
  const fragments = [];
  (doc.entities || []).forEach((entity, order) => {
    for (const [start, end] of entity.spans) {
      fragments.push({ start, end, entity, order, cut: entity.spans.length > 1 });
    }
  });
  const byPosition = (a, b) => a.start - b.start || b.end - a.end || a.order - b.order;
  fragments.sort(byPosition);
  const root = { start: 0, end: doc.text.length, children: [] };
  const stack = [root];
  while (fragments.length) {
    const fragment = fragments.shift();
    while (fragment.start >= stack[stack.length - 1].end) stack.pop();
    const parent = stack[stack.length - 1];
    if (fragment.end > parent.end) {
      fragments.push({ ...fragment, start: parent.end, cut: true });
      fragments.sort(byPosition);
      fragment.end = parent.end;
      fragment.cut = true;
    }
    const node = { ...fragment, children: [] };
    parent.children.push(node);
    stack.push(node);
  }
  return root;
}

function layers(node) {
  return node.children.length ? 1 + Math.max(...node.children.map(layers)) : 0;
}

function renderNode(container, text, node, hues) {
  let position = node.start;
  for (const child of node.children) {
    container.append(text.slice(position, child.start));
    const mark = document.createElement("mark");
    mark.className = "ent" + (child.cut ? " fragment" : "");
    mark.dataset.type = child.entity.type;
    mark.dataset.entity = child.entity.id;
    mark.tabIndex = 0;
    mark.style.setProperty("--layer", layers(child));
    colourStyle(mark, hues.get(child.entity.type));
    mark.entity = child.entity;
    renderNode(mark, text, child, hues);
    container.append(mark);
    position = child.end;
  }
  container.append(text.slice(position, node.end));
}

// -- entity details (tooltip and table) ------------------------------------------------
function formatScore(score) {
  return typeof score === "number" ? score.toFixed(3) : "–";
}

function formatLinks(entity) {
  return (entity.links || [])
    .map((link) => `${link.ontology}:${link.id}` + (link.name ? ` (${link.name})` : ""))
    .join("; ");
}

function entityTable(doc) {
  const table = document.createElement("table");
  table.className = "entities";
  const caption = table.createCaption();
  caption.textContent = `Entities in document ${doc.id}`;
  const head = table.createTHead().insertRow();
  for (const title of ["Text", "Type", "Offsets", "Score", "Linked concepts"]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = title;
    head.append(th);
  }
  const body = table.createTBody();
  const sorted = [...(doc.entities || [])].sort((a, b) => a.spans[0][0] - b.spans[0][0]);
  for (const entity of sorted) {
    const row = body.insertRow();
    const offsets = entity.spans.map(([s, e]) => `${s}–${e}`).join(", ");
    for (const value of [entity.text, entity.type, offsets, formatScore(entity.score), formatLinks(entity) || "–"]) {
      row.insertCell().textContent = value;
    }
  }
  return table;
}

const tooltip = () => document.getElementById("tooltip");

function showTooltip(mark) {
  const entity = mark.entity;
  const tip = tooltip();
  tip.replaceChildren();
  const type = document.createElement("div");
  type.className = "tip-type";
  type.textContent = entity.type;
  const lines = [`“${entity.text}”`, `score ${formatScore(entity.score)}`];
  const links = formatLinks(entity);
  if (links) lines.push(links);
  if (entity.source) lines.push(`from ${entity.source}`);
  tip.append(type, ...lines.map((line) => Object.assign(document.createElement("div"), { textContent: line })));
  tip.hidden = false;
  const box = mark.getBoundingClientRect();
  tip.style.left = `${window.scrollX + box.left}px`;
  tip.style.top = `${window.scrollY + box.bottom + 6}px`;
  mark.setAttribute("aria-describedby", "tooltip");
}

function hideTooltip(mark) {
  tooltip().hidden = true;
  if (mark) mark.removeAttribute("aria-describedby");
}

// -- page --------------------------------------------------------------------------------
let lastResult = null;

function setStatus(message, isError = false) {
  const status = document.getElementById("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

function renderDocuments(docs) {
  const types = [...new Set(docs.flatMap((d) => (d.entities || []).map((e) => e.type)))].sort();
  let spare = 0;
  const hues = new Map(types.map((t) => [t, typeHue(t, t.toLowerCase() in TYPE_HUES ? 0 : spare++)]));

  const legend = document.getElementById("legend");
  legend.replaceChildren();
  for (const type of types) {
    const count = docs.reduce((n, d) => n + (d.entities || []).filter((e) => e.type === type).length, 0);
    const item = document.createElement("li");
    item.dataset.type = type;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.setAttribute("aria-hidden", "true");
    colourStyle(swatch, hues.get(type));
    item.append(swatch, `${type} (${count})`);
    legend.append(item);
  }

  const container = document.getElementById("documents");
  container.replaceChildren();
  for (const doc of docs) {
    const section = document.createElement("article");
    section.className = "document";
    section.dataset.doc = doc.id;
    const title = document.createElement("h3");
    title.textContent = `Document ${doc.id}`;
    const text = document.createElement("div");
    text.className = "doc-text";
    renderNode(text, doc.text, fragmentTree(doc), hues);
    section.append(title, text, entityTable(doc));
    container.append(section);
  }
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.message || JSON.stringify(body);
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

async function annotate(event) {
  event.preventDefault();
  const format = document.getElementById("input-format").value;
  const text = document.getElementById("input-text").value;
  const key = document.getElementById("api-key").value.trim();
  const headers = {};
  if (key) headers["X-API-Key"] = key;
  let url;
  let body;
  if (format === "plain") {
    url = "annotate";
    headers["Content-Type"] = "application/json";
    body = JSON.stringify({ text, id: "text" });
  } else {
    url = `annotate/file?format=${encodeURIComponent(format)}`;
    headers["Content-Type"] = "text/plain; charset=utf-8";
    body = text;
  }
  const submit = document.getElementById("submit");
  const results = document.getElementById("results");
  submit.disabled = true;
  results.setAttribute("aria-busy", "true");
  setStatus("Annotating…");
  try {
    const response = await fetch(url, { method: "POST", headers, body });
    if (!response.ok) {
      setStatus(`Error ${response.status}: ${await errorMessage(response)}`, true);
      return;
    }
    lastResult = await response.json();
    const docs = lastResult.documents || [lastResult];
    renderDocuments(docs);
    const count = docs.reduce((n, d) => n + (d.entities || []).length, 0);
    setStatus(`${count} ${count === 1 ? "entity" : "entities"} found in ${docs.length} ${docs.length === 1 ? "document" : "documents"}.`);
    document.getElementById("download").disabled = false;
  } catch (error) {
    setStatus(`The service could not be reached: ${error.message}`, true);
  } finally {
    submit.disabled = false;
    results.setAttribute("aria-busy", "false");
  }
}

function download() {
  if (!lastResult) return;
  const blob = new Blob([JSON.stringify(lastResult, null, 2) + "\n"], { type: "application/json" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = "biotag-annotations.json";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("annotate-form").addEventListener("submit", annotate);
  document.getElementById("download").addEventListener("click", download);
  const documents = document.getElementById("documents");
  for (const [show, hide] of [["mouseover", "mouseout"], ["focusin", "focusout"]]) {
    documents.addEventListener(show, (event) => {
      const mark = event.target.closest("mark.ent");
      if (mark) showTooltip(mark);
    });
    documents.addEventListener(hide, (event) => hideTooltip(event.target.closest("mark.ent")));
  }
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") hideTooltip(document.activeElement.closest && document.activeElement.closest("mark.ent"));
  });
});
