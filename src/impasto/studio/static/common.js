/* impasto studio, common.js: what the other scripts share. The page state; small DOM helpers
   ($, el, file drop zones); the message line; fetch helpers for the JSON API under /api; number
   and time formatting. The scripts are plain ES2020 sharing one global scope: no modules, no
   build step, nothing fetched from outside the studio server. */
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

/* ---------- the message line and the JSON API ---------- */
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

/* ---------- formatting ---------- */
function formatSeconds(seconds) {
  if (!isSet(seconds)) return "";
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

function formatNumber(value) {
  if (typeof value !== "number") return String(value);
  if (value !== 0 && (Math.abs(value) >= 1e5 || Math.abs(value) < 1e-3)) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}
