/* impasto studio: the page. Plain ES2020, no framework, no build step, nothing fetched from
   outside the studio server. It talks to the JSON API under /api (info, uploads, jobs) and
   follows the jobs live through server-sent events (/api/events).

   The scripts, loaded in this order by index.html: common.js (state, helpers, fetch), forms.js
   (the New and Train forms), current.js (the current-job panel), gallery.js (cards, run again,
   compare) and this one, which feeds jobs to those panels and boots the page. */
"use strict";

/* ---------- a new job: into the gallery and the current panel ---------- */
async function startJob(request) {
  const job = await postJSON("/api/jobs", request);
  state.jobs.set(job.id, job);
  upsertCard(job);
  showCurrent(job.id);
  $("#current").scrollIntoView({ behavior: "smooth", block: "nearest" });
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
