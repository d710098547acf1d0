/* impasto studio: the page. Plain ES2020, no framework, no build step, nothing fetched from
   outside the studio server. It talks to the JSON API under /api (info, uploads, jobs) and
   follows the jobs live through server-sent events (/api/events). */
"use strict";

const state = {
  info: null,
  jobs: new Map(),          // id -> Job, as the server last described it
  currentId: null,          // the job shown in the centre panel
  photo: null,              // {id, url, name, kind: "image"|"video"}
  paintings: [],            // [{id, url, name, kind}]
  trainStyle: null,         // {id, url, name, kind}
  pendingUploads: 0,
  picked: new Set(),        // job ids ticked for comparison
  resultShownFor: null,     // the job whose finished result is built in #current
  previewShown: new Map(),  // job id -> the preview counter last loaded
};

const $ = (selector, root = document) => root.querySelector(selector);
const ACTIVE = ["queued", "running"];
const isSet = (value) => value !== null && value !== undefined;

/* ---------- small helpers ---------- */
function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (!isSet(value) || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of [].concat(children)) if (isSet(child)) node.append(child);
  return node;
}

const showMessage = (text) => { $("#message").textContent = text || ""; };
const clearMessage = () => showMessage("");

/* fetch + JSON; a non-2xx answer throws an Error carrying the server's {"error"} line. */
async function api(path, options = {}) {
  const response = await fetch(path, options).catch(() => {
    throw new Error("The studio server cannot be reached. Is `impasto serve` still running?");
  });
  if (response.status === 204) return null;
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (err) { /* not JSON: use the status line */ }
  if (!response.ok) throw new Error(body?.error || `${response.status} ${response.statusText}`.trim());
  return body;
}

function postJSON(path, data) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
}

/* Runs a user action: clears the old message, shows the error of a failed request. */
async function guarded(action) {
  clearMessage();
  try { return await action(); } catch (err) { showMessage(err.message); return undefined; }
}

function formatSeconds(seconds) {
  if (!isSet(seconds)) return "";
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

function formatNumber(value) {
  if (typeof value !== "number") return String(value);
  if (value !== 0 && (Math.abs(value) >= 1e5 || Math.abs(value) < 1e-3)) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

function formatLosses(losses) {
  return Object.entries(losses || {}).map(([name, value]) => `${name} ${formatNumber(value)}`).join(" · ");
}

function nameOfInput(id) {
  return (id || "").replace(/^sample:/, "");
}

function placeholderImage(word) {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="120"><rect width="160" height="120" fill="#26282c"/>`
    + `<text x="80" y="66" font-family="sans-serif" font-size="16" fill="#8a8f98" text-anchor="middle">${word}</text></svg>`;
  return "data:image/svg+xml," + encodeURIComponent(svg);
}

/* ---------- settings generated from a method's "fields" ---------- */
function shownDefault(field) {
  return field.default_text || (isSet(field.default) ? String(field.default) : "");
}

function fieldControl(field) {
  const name = `opt-${field.name}`;
  if (field.type === "bool") return Object.assign(el("input", { type: "checkbox", name }), { checked: Boolean(field.default) });
  if (field.type === "choice") {
    const select = el("select", { name });
    if (!isSet(field.default)) select.append(el("option", { value: "", text: field.default_text || "automatic" }));
    for (const choice of field.choices || []) select.append(el("option", { value: String(choice), text: String(choice) }));
    select.value = isSet(field.default) ? String(field.default) : "";
    return select;
  }
  const numeric = field.type === "int" || field.type === "float";
  return el("input", { type: numeric ? "number" : "text", name, placeholder: shownDefault(field),
    step: field.type === "int" ? "1" : numeric ? "any" : null, min: numeric ? field.min : null,
    max: numeric ? field.max : null, spellcheck: numeric ? null : "false" });
}

function fieldRow(field) {
  const control = fieldControl(field);
  control.title = field.help || "";
  control.dataset.field = field.name;
  const bool = field.type === "bool";
  const label = el("label", { class: bool ? "field-label bool" : "field-label", title: field.help || "" },
    bool ? [control, el("span", { text: field.label })] : [el("span", { text: field.label }), control]);
  const help = field.help ? el("small", { class: "help", text: field.help }) : null;
  return el("div", { class: "field", "data-field": field.name }, [label, help]);
}

function renderFields(mainBox, advancedBox, details, fields) {
  mainBox.replaceChildren();
  advancedBox.replaceChildren();
  for (const field of fields || []) (field.advanced ? advancedBox : mainBox).append(fieldRow(field));
  details.hidden = !advancedBox.children.length;
}

/* The options the user set (a value differing from the default, or typed in). */
function readOptions(container, fields) {
  const options = {};
  for (const field of fields || []) {
    const control = container.querySelector(`[name="opt-${field.name}"]`);
    if (!control) continue;
    if (field.type === "bool") {
      if (control.checked !== Boolean(field.default)) options[field.name] = control.checked;
    } else if (field.type === "choice") {
      const choice = (field.choices || []).find((c) => String(c) === control.value);
      if (control.value !== "" && choice !== field.default) options[field.name] = choice;
    } else if (control.value.trim() !== "") {
      const text = control.value.trim();
      options[field.name] = field.type === "text" ? text : Number(text);
    }
  }
  return options;
}

function fillOptions(container, fields, options = {}) {
  for (const field of fields || []) {
    const control = container.querySelector(`[name="opt-${field.name}"]`);
    if (!control) continue;
    const value = options[field.name];
    if (field.type === "bool") control.checked = isSet(value) ? Boolean(value) : Boolean(field.default);
    else if (field.type === "choice") control.value = String(isSet(value) ? value : field.default ?? "");
    else control.value = isSet(value) ? String(value) : "";
  }
  const advanced = (fields || []).filter((f) => f.advanced).map((f) => f.name);
  const details = container.querySelector("details");
  if (details) details.open = Object.keys(options).some((name) => advanced.includes(name));
}

/* ---------- the New form: photo, paintings, samples ---------- */
function tooBig(file) {
  const limit = state.info?.limits?.max_upload_bytes;
  if (!limit || file.size <= limit) return false;
  const mb = (n) => (n / 1048576).toFixed(1);
  showMessage(`${file.name} is ${mb(file.size)} MB; the studio accepts files up to ${mb(limit)} MB.`);
  return true;
}

/* Uploads files one by one; returns those the server accepted, shows the last refusal. */
async function uploadAll(files) {
  clearMessage();
  const accepted = [];
  for (const file of files) {
    if (tooBig(file)) continue;
    state.pendingUploads += 1;
    updateStartHint();
    const form = new FormData();
    form.append("file", file);
    try {
      const up = await api("/api/uploads", { method: "POST", body: form });
      accepted.push({ id: up.id, url: up.url, name: up.name || file.name, kind: up.kind || "image" });
    } catch (err) {
      showMessage(err.message.includes(file.name) ? err.message : `${file.name}: ${err.message}`); // e.g. 415
    } finally {
      state.pendingUploads -= 1;
      updateStartHint();
    }
  }
  return accepted;
}

/* A drop handler that uploads the first file into state[key], then calls render. */
function chooseOne(key, render) {
  return async (files) => {
    const [chosen] = await uploadAll(files.slice(0, 1));
    if (chosen) state[key] = chosen;
    render();
  };
}

async function addPaintings(files) {
  state.paintings.push(...await uploadAll(files));
  renderChosen();
}

function mediaFor(item, className) {
  const video = { src: item.url, class: className, muted: true, preload: "metadata", controls: true };
  if (item.kind === "video") return el("video", video);
  return el("img", { src: item.url, class: className, alt: item.name, title: item.name });
}

function bigChip(item) {
  return el("figure", { class: "chip wide" }, [mediaFor(item, "chosen-media"), el("figcaption", { text: item.name })]);
}

function renderChosen() {
  $("#photo-chosen").replaceChildren(...(state.photo ? [bigChip(state.photo)] : []));
  $("#paintings-chosen").replaceChildren(...state.paintings.map((painting, index) => {
    const drop = () => { state.paintings.splice(index, 1); renderChosen(); };
    const what = `remove ${painting.name}`;
    const remove = el("button", { type: "button", class: "remove", title: what, "aria-label": what, text: "×", onclick: drop });
    return el("figure", { class: "chip" }, [mediaFor(painting, "chosen-media"), remove]);
  }));
  $("#temporal-group").hidden = state.photo?.kind !== "video";
  updateStartHint();
}

function renderTrainStyle() {
  $("#train-style-chosen").replaceChildren(...(state.trainStyle ? [bigChip(state.trainStyle)] : []));
}

function sampleItem(sample) {
  return { id: sample.id, url: sample.url, name: sample.name, kind: "image" };
}

/* The bundled pair: the sample whose role is "photo" and the one whose role is "painting". */
function useSamples() {
  clearMessage();
  const samples = state.info?.samples || [];
  const photo = samples.find((s) => s.role === "photo");
  const painting = samples.find((s) => s.role === "painting");
  if (photo) state.photo = sampleItem(photo);
  if (painting) state.paintings = [sampleItem(painting)];
  renderChosen();
}

function useSample(sample) {
  if (sample.role === "photo") state.photo = sampleItem(sample);
  else if (!state.paintings.some((p) => p.id === sample.id)) state.paintings.push(sampleItem(sample));
  renderChosen();
}

function renderSamples() {
  const samples = state.info.samples || [];
  $("#samples").replaceChildren(...samples.map((sample) => el("button", {
    type: "button", class: "sample", title: `use ${sample.name} as the ${sample.role}`, onclick: () => useSample(sample),
  }, [el("img", { src: sample.url, alt: sample.name }), el("span", { text: sample.role })])));
  $("#use-samples").hidden = !samples.length;
}

/* A file input inside a drop zone: choosing or dropping files calls onFiles(files). */
function setupDrop(zone, input, onFiles) {
  const take = (files) => { if (files.length) onFiles(files); };
  input.addEventListener("change", () => {
    const files = Array.from(input.files || []);
    input.value = ""; // the same file can be chosen again
    take(files);
  });
  const over = (on) => (event) => { event.preventDefault(); zone.classList.toggle("over", on); };
  for (const type of ["dragenter", "dragover"]) zone.addEventListener(type, over(true));
  zone.addEventListener("dragleave", over(false));
  zone.addEventListener("drop", (event) => { over(false)(event); take(Array.from(event.dataTransfer?.files || [])); });
}

/* ---------- the New form: method, model, settings, start ---------- */
function currentMethod() {
  return (state.info?.methods || []).find((m) => m.name === $("#method").value) || null;
}

function renderMethods() {
  const methods = state.info.methods || [];
  $("#method").replaceChildren(...methods.map((m) => el("option", {
    value: m.name,
    text: m.available ? m.name : `${m.name} (unavailable: ${m.why || "not installed"})`,
    disabled: !m.available,
    title: m.available ? m.summary : m.why,
  })));
  const chosen = methods.find((m) => m.name === state.info.default_method && m.available) || methods.find((m) => m.available);
  $("#method").value = chosen ? chosen.name : "";
  onMethodChange();
}

function onMethodChange() {
  const method = currentMethod();
  $("#method-summary").textContent = method ? method.summary : "No method can run on this machine.";
  renderFields($("#settings-main"), $("#settings-advanced"), $("#advanced"), method?.fields);
  $("#paintings-group").hidden = Boolean(method && !method.takes_styles);
  renderModels(method);
}

function renderModels(method) {
  const previous = $("#model").value;
  const models = method?.models || [];
  $("#model-group").hidden = !method?.takes_model;
  $("#model").replaceChildren(...models.map((name) => el("option", { value: name, text: name })));
  if (models.includes(previous)) $("#model").value = previous;
  $("#model-help").textContent = models.length ? "the trained style to apply" : "No trained model yet: train one below.";
  updateStartHint();
}

/* The new models of a finished training appear in the model menus. */
async function refreshModels() {
  try {
    state.info.methods = (await api("/api/info")).methods;
    renderModels(currentMethod());
  } catch (err) { showMessage(err.message); }
}

function startProblem() {
  const method = currentMethod();
  if (!state.info) return "Loading…";
  if (state.pendingUploads) return "Uploading…";
  if (!method) return "No method is available.";
  if (!state.photo) return "Choose a photo first.";
  if (method.takes_styles && !state.paintings.length) return "Choose at least one painting.";
  if (method.takes_model && !$("#model").value) return "Choose a trained model.";
  return "";
}

function updateStartHint() {
  const problem = startProblem();
  $("#start").disabled = Boolean(problem);
  $("#start-hint").textContent = problem;
}

function stylizeRequest() {
  const method = currentMethod();
  const request = { kind: "stylize", method: method.name, content: state.photo.id,
    styles: method.takes_styles ? state.paintings.map((p) => p.id) : [], options: readOptions($("#settings"), method.fields) };
  if (method.takes_model) request.model = $("#model").value;
  if (state.photo.kind === "video") request.temporal = Number($("#temporal").value || 0);
  return request;
}

async function startJob(request) {
  const job = await postJSON("/api/jobs", request);
  state.jobs.set(job.id, job);
  upsertCard(job);
  showCurrent(job.id);
  $("#current").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

function startStylize() {
  if (!startProblem()) guarded(() => startJob(stylizeRequest()));
}

/* ---------- training ---------- */
function currentTraining() {
  return (state.info?.training || []).find((t) => t.kind === $("#train-kind").value) || null;
}

function renderTraining() {
  const kinds = state.info.training || [];
  $("#train").hidden = !kinds.length;
  $("#train-kind").replaceChildren(...kinds.map((t) => el("option", { value: t.kind, text: t.kind, title: t.summary })));
  onTrainKindChange();
}

function onTrainKindChange() {
  const kind = currentTraining();
  const inputs = kind?.inputs || [];
  $("#train-summary").textContent = kind ? kind.summary : "";
  $("#train-style-group").hidden = !inputs.includes("style");
  $("#train-data-group").hidden = !inputs.includes("data");
  $("#train-styles-group").hidden = !inputs.includes("styles");
  renderFields($("#train-settings-main"), $("#train-settings-advanced"), $("#train-advanced"), kind?.fields);
}

function trainRequest() {
  const kind = currentTraining();
  const inputs = kind.inputs || [];
  const request = { kind: "train", training: kind.kind, options: readOptions($("#train-settings"), kind.fields) };
  if (inputs.includes("style")) {
    if (!state.trainStyle) throw new Error("Choose the painting to train on first.");
    request.style = state.trainStyle.id;
  }
  if (inputs.includes("data")) request.data = $("#train-data").value.trim();
  if (inputs.includes("styles")) request.styles = $("#train-styles").value.trim();
  return request;
}

function startTraining() {
  if (currentTraining()) guarded(() => startJob(trainRequest()));
}

/* ---------- "Run again with…": a job's request back into its form ---------- */
function runAgain(job) {
  const request = job.request || {};
  if (request.kind === "train") return fillTraining(job);
  const method = (state.info.methods || []).find((m) => m.name === request.method);
  if (method?.available) $("#method").value = method.name;
  onMethodChange();
  const inputs = job.inputs || {};
  if (request.content) {
    const video = isSet(request.temporal) || job.output === "video";
    const name = nameOfInput(request.content);
    state.photo = { id: request.content, url: inputs.content, name, kind: video ? "video" : "image" };
  }
  const painting = (id, i) => ({ id, url: inputs.styles?.[i], name: nameOfInput(id), kind: "image" });
  if (request.styles?.length) state.paintings = request.styles.map(painting);
  if (request.model) $("#model").value = request.model;
  if (isSet(request.temporal)) $("#temporal").value = request.temporal;
  fillOptions($("#settings"), currentMethod()?.fields, request.options || {});
  renderChosen();
  flash($("#new"));
}

function fillTraining(job) {
  const request = job.request || {};
  $("#train-kind").value = request.training;
  onTrainKindChange();
  if (request.style) {
    const url = job.inputs?.content || job.inputs?.styles?.[0] || `/api/uploads/${request.style}`;
    state.trainStyle = { id: request.style, url, name: nameOfInput(request.style), kind: "image" };
  }
  $("#train-data").value = request.data || "";
  $("#train-styles").value = request.styles || "";
  fillOptions($("#train-settings"), currentTraining()?.fields, request.options || {});
  renderTrainStyle();
  flash($("#train"));
}

function flash(panel) {
  panel.scrollIntoView({ behavior: "smooth", block: "start" });
  panel.classList.remove("flash");
  void panel.offsetWidth; // restart the animation
  panel.classList.add("flash");
}

/* ---------- before/after slider: afterNode clipped over the before image ---------- */
function beforeAfter(beforeUrl, afterNode, sliderId, labels = ["before", "after"]) {
  const before = el("img", { src: beforeUrl, class: "ba-before", alt: labels[0] });
  afterNode.classList.add("ba-after");
  const line = el("div", { class: "ba-line" });
  const slider = el("input", { type: "range", id: sliderId, class: "ba-slider", min: "0", max: "100", value: "50",
    "aria-label": labels.join(" / ") });
  const apply = () => { afterNode.style.clipPath = `inset(0 0 0 ${slider.value}%)`; line.style.left = `${slider.value}%`; };
  slider.addEventListener("input", apply);
  apply();
  const box = el("div", { class: "ba" }, [before, afterNode, line,
    el("span", { class: "ba-tag left", text: labels[0] }), el("span", { class: "ba-tag right", text: labels[1] })]);
  return el("div", { class: "ba-wrap" }, [box, slider]);
}

/* ---------- the current-job panel ---------- */
function showCurrent(id) {
  state.currentId = id;
  state.resultShownFor = null;
  renderCurrent();
}

function stageText(job) {
  const words = { queued: "Waiting in the queue…", done: "Done", failed: "Failed", cancelled: "Cancelled" };
  if (job.state === "running") return job.progress?.stage || "Starting…";
  return words[job.state] || job.state;
}

function renderProgress(job) {
  const progress = job.progress || {};
  const bar = $("#progress");
  $("#stage").textContent = stageText(job);
  if (job.state === "done") Object.assign(bar, { max: 1, value: 1 });
  else if (progress.total) Object.assign(bar, { max: progress.total, value: Math.min(progress.step || 0, progress.total) });
  else if (ACTIVE.includes(job.state)) bar.removeAttribute("value"); // indeterminate
  const steps = progress.total ? `step ${progress.step || 0} / ${progress.total}` : "";
  $("#step-text").textContent = job.state === "done" ? `finished in ${formatSeconds(job.seconds)}` : steps;
  $("#losses").textContent = formatLosses(progress.losses);
}

function renderCurrent() {
  const job = state.jobs.get(state.currentId);
  $("#current-empty").hidden = Boolean(job);
  $("#current-body").hidden = !job;
  $("#current").dataset.state = job ? job.state : "";
  $("#current-title").textContent = job ? job.title || job.id : "Current job";
  $("#current-state").textContent = job ? job.state : "";
  if (!job) return;
  $("#current-state").dataset.state = job.state;
  renderProgress(job);
  $("#job-error").hidden = !job.error;
  $("#job-error").textContent = job.error || "";
  $("#cancel").hidden = !ACTIVE.includes(job.state);
  $("#current-time").textContent = job.attempts > 1 ? `attempt ${job.attempts}` : "";
  const download = downloadLink(job);
  download.id = "current-download";
  download.hidden = !job.result_url;
  if (job.output === "model") download.textContent = "Download the model (zip)";
  $("#current-download").replaceWith(download);
  renderCurrentView(job);
}

function renderCurrentView(job) {
  const box = $("#result-box");
  const preview = $("#preview");
  if (job.state === "done" && job.result_url) {
    preview.hidden = true;
    $("#view-note").textContent = "";
    if (state.resultShownFor !== job.id) box.replaceChildren(resultView(job)); // keeps the slider where it is
    state.resultShownFor = job.id;
    box.hidden = false;
    return;
  }
  box.hidden = true;
  box.replaceChildren();
  state.resultShownFor = null;
  if (job.preview_url && !state.previewShown.has(job.id)) loadPreview(job.id, job.previews || `t${Date.now()}`);
  else if (state.previewShown.has(job.id)) preview.src = previewUrl(job.id, state.previewShown.get(job.id));
  preview.hidden = !state.previewShown.has(job.id);
  const words = { queued: "The picture appears here once the job starts.",
    running: "Working… the picture appears here when it is ready." };
  $("#view-note").textContent = preview.hidden ? words[job.state] || "" : "";
}

function resultView(job) {
  if (job.output === "video") return el("video", { id: "result", class: "result", src: job.result_url, controls: true });
  if (job.output === "model") {
    const src = job.preview_url ? previewUrl(job.id, job.previews ?? "final") : null;
    const image = src ? el("img", { class: "model-preview", src, alt: "a preview of the trained style" }) : null;
    const words = "The style model is trained: download it as a zip below.";
    return el("div", { class: "model-done" }, [image, el("p", { text: words })]);
  }
  const result = el("img", { id: "result", class: "result", src: job.result_url, alt: "result" });
  const photo = job.inputs?.content;
  return photo ? beforeAfter(photo, result, "slider", ["photo", "result"]) : result;
}

function previewUrl(id, counter) {
  return `/api/jobs/${id}/preview?n=${encodeURIComponent(counter)}`;
}

/* Loads a preview off-screen first, so the picture never blinks while it forms. */
function loadPreview(id, counter) {
  const url = previewUrl(id, counter);
  const image = new Image();
  image.onload = () => {
    state.previewShown.set(id, counter);
    const job = state.jobs.get(id);
    if (!job || job.result_url) return;
    if (id === state.currentId) renderCurrentView(job);
    const thumb = $(`.job-card[data-job="${id}"] img.thumb`);
    if (thumb) thumb.src = url;
  };
  image.src = url;
}

async function cancelCurrent() {
  const id = state.currentId;
  if (id) await guarded(async () => onState(await api(`/api/jobs/${id}/cancel`, { method: "POST" })));
}

/* ---------- the gallery ---------- */
function optionSummary(request) {
  const parts = Object.entries(request?.options || {})
    .filter(([, value]) => isSet(value) && value !== "")
    .map(([name, value]) => `${name.replace(/_/g, " ")} ${formatNumber(value)}`);
  if (request?.model) parts.unshift(request.model);
  if (request?.styles?.length > 1) parts.push(`${request.styles.length} paintings`);
  if (isSet(request?.temporal)) parts.push(`temporal ${request.temporal}`);
  return parts.length ? parts.join(" · ") : "default settings";
}

function jobLabel(job) {
  return job.kind === "train" ? `train ${job.request?.training || ""}`.trim() : job.method || job.request?.method || "";
}

function statusText(job) {
  const progress = job.progress || {};
  const steps = progress.total ? ` ${progress.step}/${progress.total}` : "";
  if (job.state === "running") return `${progress.stage || "starting…"}${steps}`;
  if (job.state === "done") return formatSeconds(job.seconds);
  if (job.state === "failed") return job.error || "failed";
  return job.state === "queued" ? "waiting…" : "";
}

function thumbFor(job) {
  const common = { class: "thumb", title: "show in the current panel", onclick: () => showCurrent(job.id) };
  const video = job.output === "video" && job.result_url;
  if (video) return el("video", { ...common, src: job.result_url, muted: true, preload: "metadata" });
  return el("img", { ...common, src: pictureUrl(job), alt: job.title || job.id });
}

/* The result, else the latest preview, else a word in a grey box. */
function pictureUrl(job) {
  if (job.result_url && job.output !== "model") return job.result_url;
  if (job.preview_url) return previewUrl(job.id, state.previewShown.get(job.id) ?? job.previews ?? job.finished);
  return placeholderImage(job.output === "model" ? "model" : job.state);
}

function hasPicture(job) {
  return Boolean((job.result_url && job.output !== "model") || job.preview_url);
}

function downloadLink(job) {
  const ready = Boolean(job.result_url);
  return el("a", { class: ready ? "download button" : "download button disabled", text: "Download",
    href: job.result_url, download: ready ? job.download_name || true : null, "aria-disabled": ready ? null : "true" });
}

function buildCard(job) {
  const active = ACTIVE.includes(job.state);
  const pick = el("input", { type: "checkbox", class: "compare-pick", disabled: !hasPicture(job), "aria-label": "compare" });
  pick.checked = state.picked.has(job.id);
  pick.addEventListener("change", () => togglePick(job.id, pick.checked));
  return el("article", { class: "job-card", "data-job": job.id, "data-state": job.state }, [
    el("div", { class: "thumb-box" }, thumbFor(job)),
    el("div", { class: "card-body" }, [
      el("div", { class: "card-title" }, [el("b", { text: jobLabel(job) }),
        el("span", { class: "badge", "data-state": job.state, text: job.state })]),
      el("div", { class: "card-summary", title: job.title || "", text: optionSummary(job.request) }),
      el("div", { class: "card-status", text: statusText(job) }),
      el("div", { class: "card-actions" }, [
        el("button", { type: "button", class: "again", text: "Run again with…", title: "put these settings back into the form",
          onclick: () => runAgain(job) }),
        downloadLink(job),
        el("button", { type: "button", class: "delete", text: "Delete", title: active ? "cancel it first" : "delete this job",
          onclick: () => deleteJob(job.id) }),
        el("label", { class: "pick" }, [pick, el("span", { text: "compare" })]),
      ]),
    ]),
  ]);
}

/* Inserts or replaces a job's card, keeping the gallery newest first. */
function upsertCard(job) {
  const gallery = $("#gallery");
  const fresh = buildCard(job);
  const old = $(`.job-card[data-job="${job.id}"]`, gallery);
  if (old) old.replaceWith(fresh);
  else {
    const older = Array.from(gallery.children).find((card) => (state.jobs.get(card.dataset.job)?.created || 0) < job.created);
    gallery.insertBefore(fresh, older || null);
  }
  $("#gallery-empty").hidden = gallery.children.length > 0;
}

function removeCard(id) {
  $(`.job-card[data-job="${id}"]`)?.remove();
  state.picked.delete(id);
  updateCompareButton();
  $("#gallery-empty").hidden = $("#gallery").children.length > 0;
}

async function deleteJob(id) {
  await guarded(async () => {
    await api(`/api/jobs/${id}`, { method: "DELETE" });
    onState({ id, state: "deleted" });
  });
}

/* ---------- compare ---------- */
function togglePick(id, on) {
  state.picked[on ? "add" : "delete"](id);
  updateCompareButton();
}

function updateCompareButton() {
  const count = state.picked.size;
  $("#compare-open").disabled = count < 2;
  $("#compare-open").textContent = count ? `Compare ticked (${count})` : "Compare ticked";
}

function compareItem(job) {
  const media = job.output === "video" && job.result_url
    ? el("video", { src: job.result_url, controls: true, muted: true })
    : el("img", { src: pictureUrl(job), alt: job.title || job.id });
  const details = [job.title, formatSeconds(job.seconds)].filter(Boolean).join(" · ");
  return el("figure", { class: "compare-item", "data-job": job.id }, [media, el("figcaption", {}, [
    el("b", { text: `${jobLabel(job)} · ${job.state}` }),
    el("div", { class: "settings-text", text: optionSummary(job.request) }),
    el("div", { class: "hint", text: details }),
  ])]);
}

function openCompare() {
  const order = Array.from($("#gallery").children).map((card) => card.dataset.job);
  const jobs = order.filter((id) => state.picked.has(id)).map((id) => state.jobs.get(id)).filter(Boolean);
  if (jobs.length < 2) return;
  $("#compare-items").replaceChildren(...jobs.map(compareItem));
  const pair = $("#compare-pair");
  pair.replaceChildren();
  if (jobs.length === 2 && jobs.every((job) => job.output !== "video")) {
    const [left, right] = jobs;
    const over = el("img", { src: pictureUrl(right), alt: right.title || right.id });
    const labels = [left, right].map((job) => `${jobLabel(job)} · ${optionSummary(job.request)}`);
    pair.append(beforeAfter(pictureUrl(left), over, "compare-slider", labels));
  }
  pair.hidden = !pair.children.length;
  $("#compare").hidden = false;
  document.body.classList.add("comparing");
  $("#compare-close").focus();
}

function closeCompare() {
  $("#compare").hidden = true;
  document.body.classList.remove("comparing");
}

/* ---------- live updates ---------- */
function onState(job) {
  if (job.state === "deleted") {
    state.jobs.delete(job.id);
    removeCard(job.id);
    if (state.currentId === job.id) showCurrent(null);
    return;
  }
  const before = state.jobs.get(job.id);
  keepLosses(job, before);
  state.jobs.set(job.id, job);
  upsertCard(job);
  if (!state.currentId) state.currentId = job.id;
  if (state.currentId === job.id) renderCurrent();
  if (job.kind === "train" && job.state === "done" && before?.state !== "done") refreshModels();
}

/* The last losses stay on show after the job ends (its final progress has none). */
function keepLosses(job, before) {
  const empty = !Object.keys(job.progress?.losses || {}).length;
  if (empty && job.progress && before?.progress?.losses) job.progress.losses = before.progress.losses;
}

function onProgress(data) {
  const job = state.jobs.get(data.job);
  if (!job) return;
  const before = { progress: job.progress };
  job.progress = { stage: data.stage, step: data.step, total: data.total, losses: data.losses };
  keepLosses(job, before);
  if (job.state === "queued") job.state = "running";
  const status = $(`.job-card[data-job="${job.id}"] .card-status`);
  if (status) status.textContent = statusText(job);
  if (data.job === state.currentId) renderProgress(job);
  if (isSet(data.preview) && state.previewShown.get(data.job) !== data.preview) loadPreview(data.job, data.preview);
}

/* The whole list again (at start and after a reconnection: events may have been missed). */
async function refreshJobs() {
  try {
    const { jobs } = await api("/api/jobs");
    const seen = new Set(jobs.map((job) => job.id));
    for (const id of Array.from(state.jobs.keys())) if (!seen.has(id)) onState({ id, state: "deleted" });
    for (const job of jobs) state.jobs.set(job.id, job);
    for (const job of jobs.slice().reverse()) upsertCard(job);
    if (!state.currentId && jobs.length) state.currentId = (jobs.find((job) => ACTIVE.includes(job.state)) || jobs[0]).id;
    renderCurrent();
  } catch (err) { showMessage(err.message); }
}

function setConnection(live) {
  const badge = $("#connection");
  badge.textContent = live ? "live" : "reconnecting…";
  badge.title = live ? "live updates" : "lost the server; retrying";
  badge.dataset.live = live ? "yes" : "no";
}

function connectEvents() {
  const source = new EventSource("/api/events");
  source.addEventListener("open", () => { setConnection(true); refreshJobs(); });
  source.addEventListener("error", () => {
    setConnection(false);
    if (source.readyState === EventSource.CLOSED) setTimeout(connectEvents, 3000);
  });
  source.addEventListener("progress", (event) => onProgress(JSON.parse(event.data)));
  source.addEventListener("state", (event) => onState(JSON.parse(event.data)));
}

/* ---------- start-up ---------- */
function applyInfo(info) {
  state.info = info;
  $("#version").textContent = info.version ? `v${info.version}` : "";
  document.title = `impasto studio ${info.version || ""}`.trim();
  if (info.video) $("#photo-file").setAttribute("accept", "image/*,video/*");
  $("#photo-kinds").textContent = info.video ? "image or video" : "image";
  renderSamples();
  renderMethods();
  renderTraining();
  useSamples();
}

function wireEvents() {
  setupDrop($("#photo-drop"), $("#photo-file"), chooseOne("photo", renderChosen));
  setupDrop($("#painting-drop"), $("#painting-file"), addPaintings);
  setupDrop($("#train-style-drop"), $("#train-style-file"), chooseOne("trainStyle", renderTrainStyle));
  const clicks = { "#use-samples": useSamples, "#start": startStylize, "#train-start": startTraining, "#cancel": cancelCurrent,
    "#compare-open": openCompare, "#compare-close": closeCompare, "#message": clearMessage };
  for (const [selector, handler] of Object.entries(clicks)) $(selector).addEventListener("click", handler);
  const changes = { "#method": onMethodChange, "#model": updateStartHint, "#train-kind": onTrainKindChange };
  for (const [selector, handler] of Object.entries(changes)) $(selector).addEventListener("change", handler);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("#compare").hidden) closeCompare();
  });
}

async function init() {
  wireEvents();
  updateStartHint();
  try { applyInfo(await api("/api/info")); } catch (err) { showMessage(err.message); return; }
  await refreshJobs();
  connectEvents();
}

document.addEventListener("DOMContentLoaded", init);
