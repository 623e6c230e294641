// The review page: POST the record to /v1/entities, draw displaCy's entity
// markup from the entity JSON (so the threshold can change without asking the
// server again), mark entities under the threshold for review, and list them
// in a table that can be copied or downloaded as JSON. Everything the text
// holds is inserted as text nodes, never as HTML.
"use strict";

const state = { text: "", entities: [], colors: {}, model: null };
const $ = (id) => document.getElementById(id);
const FALLBACK = ["#8ecae6", "#ff8fa3", "#b5e48c", "#ffd166", "#cdb4db", "#f4a261", "#84a59d", "#bde0fe"];

function colorOf(label) {
  if (!(label in state.colors)) {
    state.colors[label] = FALLBACK[Object.keys(state.colors).length % FALLBACK.length];
  }
  return state.colors[label];
}

function threshold() {
  const value = parseFloat($("threshold").value);
  return Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 0;
}

// "review" under the threshold, "accept" at or above it, "no score" when the
// pipeline sets no scores.
function status(entity) {
  if (typeof entity.score !== "number") return "no score";
  return entity.score < threshold() ? "review" : "accept";
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "style") node.style.cssText = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function render() {
  const rendering = $("rendering");
  rendering.replaceChildren();
  const ordered = [...state.entities].sort((a, b) => a.start - b.start);
  let offset = 0;
  let review = 0;
  for (const entity of ordered) {
    if (entity.start < offset) continue; // doc.ents never overlap; be safe anyway
    rendering.append(state.text.slice(offset, entity.start));
    const st = status(entity);
    if (st === "review") review += 1;
    const prob = typeof entity.score === "number" ? entity.score.toFixed(2) : "";
    const mark = el("mark", {
      class: "entity" + (st === "review" ? " review" : ""), style: `background: ${colorOf(entity.label)}`,
      "data-label": entity.label, "data-start": entity.start, "data-end": entity.end,
      title: `${entity.label}${prob ? " · p=" + prob : ""}${st === "review" ? " · to review" : ""}`,
    }, state.text.slice(entity.start, entity.end), el("span", { class: "label" }, entity.label));
    if (prob) mark.append(el("span", { class: "prob" }, prob));
    rendering.append(mark);
    offset = entity.end;
  }
  rendering.append(state.text.slice(offset));

  const body = $("entities").tBodies[0];
  body.replaceChildren();
  ordered.forEach((entity, i) => {
    const st = status(entity);
    body.append(el("tr", { class: st === "review" ? "review" : "" },
      el("td", {}, String(i + 1)), el("td", {}, String(entity.start)), el("td", {}, String(entity.end)),
      el("td", {}, el("span", { class: "chip", style: `background: ${colorOf(entity.label)}` }, entity.label)),
      el("td", {}, entity.text),
      el("td", {}, typeof entity.score === "number" ? entity.score.toFixed(4) : "–"),
      el("td", { class: "status-" + st.replace(" ", "-") }, st)));
  });
  $("summary").textContent = `${ordered.length} found, ${review} to review (probability under ${threshold()})`;
  $("output").hidden = false;
}

function exported() {
  const t = threshold();
  return {
    model: state.model ? { name: state.model.name, version: state.model.version } : null,
    threshold: t, text: state.text,
    entities: state.entities.map((e) => ({ ...e, review: typeof e.score === "number" ? e.score < t : null })),
  };
}

async function annotate() {
  const text = $("record").value;
  const button = $("annotate");
  button.disabled = true;
  $("status").className = "muted";
  $("status").textContent = "Annotating…";
  try {
    const response = await fetch("/v1/entities", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text }),
    });
    const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    state.text = text;
    state.entities = body.entities;
    render();
    $("status").textContent = `Done: ${body.entities.length} entities.`;
  } catch (err) {
    // The entities on show belong to the last record sent: hide them, so they
    // are never read as this record's.
    state.entities = [];
    $("output").hidden = true;
    $("status").className = "error";
    $("status").textContent = `Error: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

async function copyJson() {
  const json = JSON.stringify(exported(), null, 2);
  try {
    await navigator.clipboard.writeText(json);
  } catch (err) { // no clipboard permission: fall back to a selected textarea
    const area = el("textarea", { style: "position: fixed; opacity: 0" }, json);
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  $("copied").textContent = "Copied.";
}

function downloadJson() {
  const blob = new Blob([JSON.stringify(exported(), null, 2)], { type: "application/json" });
  const link = el("a", { href: URL.createObjectURL(blob), download: "entities.json" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

async function loadModel() {
  try {
    const response = await fetch("/v1/metadata");
    if (response.status === 503) { setTimeout(loadModel, 1000); return; }
    const meta = await response.json();
    state.model = meta;
    Object.assign(state.colors, meta.colors || {});
    $("model").textContent = `${meta.name} ${meta.version} · spaCy ${meta.versions.spacy} · spacy_medner ${meta.versions.spacy_medner}`;
    $("legend").replaceChildren(...meta.labels.map((label) => el("span", { class: "chip", style: `background: ${colorOf(label)}` }, label)));
  } catch (err) {
    setTimeout(loadModel, 1000);
  }
}

function start() {
  // ?text=...&threshold=... fill the form; &annotate=1 submits it (links to a record).
  const params = new URLSearchParams(location.search);
  if (params.has("text")) $("record").value = params.get("text");
  if (params.has("threshold")) $("threshold").value = params.get("threshold");
  $("annotate").addEventListener("click", annotate);
  $("record").addEventListener("keydown", (event) => { if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) annotate(); });
  $("threshold").addEventListener("input", () => { if (!$("output").hidden) render(); });
  $("copy").addEventListener("click", copyJson);
  $("download").addEventListener("click", downloadJson);
  loadModel();
  if (params.get("annotate") === "1" && $("record").value) annotate();
}

start();
