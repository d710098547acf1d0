/* impasto studio, forms.js: the two forms on the left. Settings controls generated from the
   "fields" that /api/info describes; the New form (photo and painting uploads, samples, method,
   model, start hint); the Train form. Starting a job goes through startJob (studio.js). */
"use strict";

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
