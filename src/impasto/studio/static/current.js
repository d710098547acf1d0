/* impasto studio, current.js: the current-job panel in the centre. Stage, progress bar and
   losses; the preview that forms while a job runs (loaded off-screen, no blinking); the result
   with its before/after slider; the Download link and Cancel. */
"use strict";

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

function formatLosses(losses) {
  return Object.entries(losses || {}).map(([name, value]) => `${name} ${formatNumber(value)}`).join(" · ");
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

/* A job's Download link (the gallery cards use it too), greyed out until there is a result. */
function downloadLink(job) {
  const ready = Boolean(job.result_url);
  return el("a", { class: ready ? "download button" : "download button disabled", text: "Download",
    href: job.result_url, download: ready ? job.download_name || true : null, "aria-disabled": ready ? null : "true" });
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
