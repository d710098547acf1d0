/* impasto studio, gallery.js: the gallery of jobs and what its cards do. A card per job
   (thumbnail, settings, status), delete, "Run again with…" (the job's request back into its
   form) and the compare view of ticked jobs. */
"use strict";

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

function placeholderImage(word) {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="120"><rect width="160" height="120" fill="#26282c"/>`
    + `<text x="80" y="66" font-family="sans-serif" font-size="16" fill="#8a8f98" text-anchor="middle">${word}</text></svg>`;
  return "data:image/svg+xml," + encodeURIComponent(svg);
}

function hasPicture(job) {
  return Boolean((job.result_url && job.output !== "model") || job.preview_url);
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

/* ---------- "Run again with…": a job's request back into its form ---------- */
function nameOfInput(id) {
  return (id || "").replace(/^sample:/, "");
}

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
