// The review page: POST the record to /v1/entities, draw displaCy's entity
// markup from the entity JSON (so the threshold can change without asking the
// server again), mark entities under the threshold for review, and list them
// in a table that can be copied or downloaded as JSON. A span_ner answer also
// has `mentions` (every span found, nested and crossing ones too): they get a
// second drawing in displaCy's span style and a table of their own. Everything
// the text holds is inserted as text nodes, never as HTML.
//
// Offsets are the server's: Python string indices, i.e. code points. A JS
// string indexes UTF-16 units, so the record is cut through `chars` (one entry
// per code point) and a character outside the BMP (𠮷) shifts nothing.
"use strict";

// mentions: null for an answer without them (crf_ner), else the list.
const state = { text: "", chars: [], entities: [], mentions: null, colors: {}, model: null };
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

// record[start:end], in code points, as Python cuts it.
function slice(start, end) {
  return state.chars.slice(start, end).join("");
}

function probability(item, digits) {
  return typeof item.score === "number" ? item.score.toFixed(digits) : "";
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

function renderEntities() {
  const rendering = $("rendering");
  rendering.replaceChildren();
  const ordered = [...state.entities].sort((a, b) => a.start - b.start);
  let offset = 0;
  let review = 0;
  for (const entity of ordered) {
    if (entity.start < offset) continue; // doc.ents never overlap; be safe anyway
    rendering.append(slice(offset, entity.start));
    const st = status(entity);
    if (st === "review") review += 1;
    const prob = probability(entity, 2);
    const mark = el("mark", {
      class: "entity" + (st === "review" ? " review" : ""), style: `background: ${colorOf(entity.label)}`,
      "data-label": entity.label, "data-start": entity.start, "data-end": entity.end,
      title: `${entity.label}${prob ? " · p=" + prob : ""}${st === "review" ? " · to review" : ""}`,
    }, slice(entity.start, entity.end), el("span", { class: "label" }, entity.label));
    if (prob) mark.append(el("span", { class: "prob" }, prob));
    rendering.append(mark);
    offset = entity.end;
  }
  rendering.append(slice(offset));

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
  return `${ordered.length} found, ${review} to review (probability under ${threshold()})`;
}

// displaCy's span style (spacy/displacy/render.py SpanRenderer and
// templates.py TPL_SPAN, TPL_SPAN_SLICE, TPL_SPAN_START), in px.
const TOP_OFFSET = 40;        // the first bar, under the characters
const SPAN_LABEL_OFFSET = 20; // room under the lowest bar
const OFFSET_STEP = 17;       // one render slot lower

// Each mention's render slot (1 = just under the text), as displaCy assigns
// them: mentions in order of start, longer first, then label; a mention goes
// below every mention whose characters are still open at its first character
// (displaCy takes the slot after the last such one's, which is their
// highest), so two mentions over the same character never share a slot, and
// a mention inside another always lies below it.
//
// One change: a mention also skips the slots of the mentions whose label
// still hangs over its first character (`reach`). displaCy's 0.6em label
// ("sym 0.99") is wider than a two-character mention, and in a list of
// symptoms (头痛、头晕、乏力) one label would hide the next one's
// probability. It takes the first slot free below the mentions it lies in,
// so such a list alternates between rows instead of stepping down one row
// per mention. Two mentions whose characters or labels share a place still
// never share a slot: the later one starts inside the earlier one's reach.
function renderSlots(mentions, reach) {
  const order = mentions.map((_, i) => i).sort((a, b) => {
    const x = mentions[a], y = mentions[b];
    return x.start - y.start || (y.end - y.start) - (x.end - x.start) || (x.label < y.label ? -1 : x.label > y.label ? 1 : 0);
  });
  const slots = new Array(mentions.length).fill(0);
  order.forEach((i, k) => {
    const m = mentions[i];
    let below = 0;
    const taken = new Set();
    for (const j of order.slice(0, k)) {
      const o = mentions[j];
      if (o.start <= m.start && m.start < o.end) below = Math.max(below, slots[j]);
      if (o.start <= m.start && m.start < reach[j]) taken.add(slots[j]);
    }
    let slot = below + 1;
    while (taken.has(slot)) slot += 1;
    slots[i] = slot;
  });
  return slots;
}

// Full-width characters (CJK, kana, hangul, full-width forms, ⚑): about 1em.
const WIDE = /[\u1100-\u115F\u2690-\u26FF\u2E80-\uA4CF\uAC00-\uD7A3\uF900-\uFAFF\uFE30-\uFE4F\uFF00-\uFF60\uFFE0-\uFFE6]|[\u{20000}-\u{3FFFD}]/u;

// The character after the last one a mention's label hangs over, the label
// starting at character `from`. Estimated without layout, so that slots do
// not change with the window's width: the label's width is over-estimated
// (0.6em glyphs, 0.55em for a narrow one, the padding, and the review flag
// counted whatever the threshold, so a threshold change never moves a bar)
// and the record's characters under-estimated (0.5em narrow, 0.25em a space).
// A label stops at a line break: past it, the characters are on the next line.
function labelReach(mention, from) {
  let width = 0.45;
  for (const ch of `${mention.label} ${probability(mention, 2)} ⚑`) width += 0.6 * (WIDE.test(ch) ? 1 : 0.55);
  let c = from;
  for (let covered = 0; c < state.chars.length && covered < width && !UNBOXED.has(state.chars[c]); c++) {
    const ch = state.chars[c];
    covered += WIDE.test(ch) ? 1 : ch.trim() === "" ? 0.25 : 0.5;
  }
  return c;
}

// For each mention, how it lies against the others: "inside #2 左下腹疼痛",
// "contains #1 左下腹", "crosses #3 …", "same characters as #4 …".
function nesting(mentions) {
  return mentions.map((m, i) => mentions.flatMap((o, j) => {
    if (i === j || o.end <= m.start || m.end <= o.start) return [];
    let kind = "crosses";
    if (o.start === m.start && o.end === m.end) kind = "same characters as";
    else if (o.start <= m.start && m.end <= o.end) kind = "inside";
    else if (m.start <= o.start && o.end <= m.end) kind = "contains";
    return [`${kind} #${j + 1} ${o.text}`];
  }));
}

// Characters that get no box, as displaCy draws no bar under a whitespace
// token: a line break inside an inline-block would break the layout.
const UNBOXED = new Set(["\n", "\r"]);

function renderMentions() {
  const mentions = state.mentions;
  const drawing = $("spans");
  drawing.replaceChildren();
  const n = state.chars.length;
  const over = Array.from({ length: n }, () => []); // per character: the mentions over it
  const first = mentions.map(() => -1);             // per mention: the character with its label
  mentions.forEach((m, i) => {
    for (let c = Math.max(0, m.start); c < Math.min(n, m.end); c++) {
      over[c].push(i);
      if (first[i] < 0 && !UNBOXED.has(state.chars[c])) first[i] = c;
    }
  });
  const slots = renderSlots(mentions, mentions.map((m, i) => (first[i] < 0 ? m.end : Math.max(m.end, labelReach(m, first[i])))));
  let plain = "";
  for (let c = 0; c < n; c++) {
    const ch = state.chars[c];
    if (!over[c].length || UNBOXED.has(ch)) { plain += ch; continue; }
    if (plain) { drawing.append(plain); plain = ""; }
    const here = over[c].sort((a, b) => slots[a] - slots[b]);
    const lowest = slots[here[here.length - 1]];
    const unit = el("span", { class: "span-char", "data-offset": c, style: `height: ${TOP_OFFSET + SPAN_LABEL_OFFSET + OFFSET_STEP * (lowest - 1)}px` }, ch);
    for (const i of here) {
      const m = mentions[i];
      const st = status(m);
      const color = colorOf(m.label);
      const isStart = first[i] === c;
      const bar = el("span", {
        class: "span-slice" + (isStart ? " span-start" : "") + (st === "review" ? " review" : ""),
        style: `background: ${color}; top: ${TOP_OFFSET + OFFSET_STEP * (slots[i] - 1)}px`,
        "data-mention": i, "data-slot": slots[i],
      });
      if (isStart) {
        const prob = probability(m, 2);
        const label = el("span", {
          class: "span-label", style: `background: ${color}`, "data-label": m.label, "data-start": m.start, "data-end": m.end,
          title: `${m.label} · ${m.text}${prob ? " · p=" + prob : ""}${st === "review" ? " · to review" : ""}`,
        }, m.label);
        if (prob) label.append(el("span", { class: "prob" }, prob));
        bar.append(label);
      }
      unit.append(bar);
    }
    drawing.append(unit);
  }
  if (plain) drawing.append(plain);

  const relations = nesting(mentions);
  const inEnts = new Set(state.entities.map((e) => `${e.start} ${e.end} ${e.label}`));
  const body = $("mentions").tBodies[0];
  body.replaceChildren();
  let review = 0;
  let nested = 0;
  mentions.forEach((m, i) => {
    const st = status(m);
    if (st === "review") review += 1;
    if (relations[i].length) nested += 1;
    body.append(el("tr", { class: st === "review" ? "review" : "" },
      el("td", {}, String(i + 1)), el("td", {}, String(m.start)), el("td", {}, String(m.end)),
      el("td", {}, el("span", { class: "chip", style: `background: ${colorOf(m.label)}` }, m.label)),
      el("td", {}, m.text),
      el("td", {}, typeof m.score === "number" ? m.score.toFixed(4) : "–"),
      el("td", { class: "status-" + st.replace(" ", "-") }, st),
      el("td", {}, relations[i].length ? relations[i].join("; ") : "–"),
      el("td", {}, inEnts.has(`${m.start} ${m.end} ${m.label}`) ? "yes" : "no")));
  });
  const summary = `${mentions.length} found, ${nested} inside or across another, ${review} to review (probability under ${threshold()})`;
  $("mention-summary").textContent = summary;
  return summary;
}

function render() {
  const hasMentions = state.mentions !== null;
  let summary = renderEntities();
  $("nested").hidden = !hasMentions;
  $("mention-list").hidden = !hasMentions;
  if (hasMentions) summary += ` · mentions: ${renderMentions()}`;
  else { $("spans").replaceChildren(); $("mentions").tBodies[0].replaceChildren(); }
  $("summary").textContent = summary;
  $("output").hidden = false;
}

function exported() {
  const t = threshold();
  const marked = (e) => ({ ...e, review: typeof e.score === "number" ? e.score < t : null });
  const out = {
    model: state.model ? { name: state.model.name, version: state.model.version } : null,
    threshold: t, text: state.text,
    entities: state.entities.map(marked),
  };
  if (state.mentions !== null) out.mentions = state.mentions.map(marked);
  return out;
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
    state.chars = Array.from(text);
    state.entities = body.entities;
    state.mentions = Array.isArray(body.mentions) ? body.mentions : null;
    render();
    $("status").textContent = `Done: ${body.entities.length} entities` +
      (state.mentions !== null ? `, ${state.mentions.length} mentions.` : ".");
  } catch (err) {
    // The entities on show belong to the last record sent: hide them, so they
    // are never read as this record's.
    state.entities = [];
    state.mentions = null;
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
