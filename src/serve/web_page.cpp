// The web page served at "/": an HTML document with its script (/app.js) and style sheet
// (/app.css) served by this server (no CDN, no network beyond this server's own API; no inline
// script or style, so the Content-Security-Policy can forbid both). Upload a file or open a job
// by id; it shows the spectrogram drawn from the per-file result JSON with the events as regions, an events table whose rows play
// their stretch of the uploaded audio, and links to the CSV/JSON/labels downloads and report.
#include "serve/server.hpp"

#pragma GCC diagnostic ignored "-Woverlength-strings"

namespace earmark::serve {

const char* web_page() {
  return R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Earmark</title>
<link rel="stylesheet" href="app.css"></head>
<body data-state="idle">
<header><h1>Earmark</h1><span>find sound events in recordings</span></header>
<main>
<section>
 <form id="upload"><input type="file" id="file" accept="audio/*,.wav,.flac,.ogg,.opus,.mp3,.m4a" multiple>
  <button id="send" type="submit">Find events</button>
  <span class="mute">or open job</span><input type="text" id="jobid" placeholder="job id"><button id="open" type="button">Open</button></form>
 <div id="status">Choose an audio file.</div><div class="bar"><div id="progress"></div></div>
</section>
<section id="result" hidden>
 <div class="files" id="files"></div>
 <h2 id="fname"></h2>
 <div id="ferror" class="ferr"></div>
 <div class="spec" id="spec"><canvas id="canvas" width="10" height="10"></canvas><div class="cursor" id="cursor"></div></div>
 <audio id="audio" controls preload="auto"></audio>
 <div class="links" id="links"></div>
 <table id="events"><thead><tr><th>#</th><th>label</th><th>onset (s)</th><th>offset (s)</th><th>confidence</th></tr></thead><tbody></tbody></table>
 <div id="warnings" class="warn"></div>
</section>
</main>
<script src="app.js"></script>
</body></html>
)HTML";
}


const char* web_style() {
  return R"CSS(:root{--fg:#1d2330;--mute:#5b6475;--line:#d8dce4;--acc:#2457c5;--bg:#f6f7f9}
*{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg);margin:0}
header{background:#1d2330;color:#fff;padding:12px 24px}header h1{font-size:20px;margin:0}header span{color:#aab3c5;font-size:13px}
main{max-width:1100px;margin:0 auto;padding:16px 24px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin-bottom:16px}
form{display:flex;gap:10px;flex-wrap:wrap;align-items:center}
button{background:var(--acc);color:#fff;border:0;border-radius:5px;padding:6px 14px;font:inherit;cursor:pointer}
button:disabled{opacity:.5}
input[type=text]{font:inherit;padding:5px 8px;border:1px solid var(--line);border-radius:5px;width:14em}
#status{color:var(--mute)}#status.error{color:#b3261e;font-weight:600}
.bar{height:6px;background:#e5e8ee;border-radius:3px;overflow:hidden;margin-top:8px}.bar div{height:100%;background:var(--acc);width:0}
.spec{position:relative;width:100%;height:200px;background:#000;border-radius:4px;overflow:hidden;cursor:crosshair}
.spec canvas{width:100%;height:100%;display:block;image-rendering:pixelated}
.region{position:absolute;top:0;bottom:0;border:2px solid;border-radius:2px;pointer-events:none}
.region span{position:absolute;left:2px;font-size:11px;color:#fff;background:rgba(0,0,0,.55);padding:0 3px;white-space:nowrap}
.cursor{position:absolute;top:0;bottom:0;width:2px;background:#fff;left:0;display:none}
table{border-collapse:collapse;width:100%;margin-top:10px}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line)}
th{font-weight:600;color:var(--mute);font-size:13px}tr.event{cursor:pointer}tr.event:hover{background:#eef3fd}tr.event.playing{background:#dbe6fb}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.also{color:var(--mute)}
.links a{margin-right:14px}.files button{background:#e8ecf4;color:var(--fg);margin:0 6px 6px 0}.files button.on{background:var(--acc);color:#fff}
.warn{color:#8a5a00}.ferr{color:#b3261e}
.mute{color:var(--mute)}#fname{font-size:17px;margin:4px 0 8px}#audio{width:100%;margin-top:8px}
)CSS";
}

const char* web_script() {
  return R"JS("use strict";
const $ = (id) => document.getElementById(id);
const COLORS = ["#e6194b","#3cb44b","#ffe119","#4363d8","#f58231","#911eb4","#46f0f0","#f032e6","#bcf60c","#fabebe","#008080","#e6beff"];
let job = null, current = 0, stopAt = null, stopTimer = 0;

function setStatus(text, isError) { $("status").textContent = text; $("status").className = isError ? "error" : ""; }
function setState(s) { document.body.dataset.state = s; }
async function apiError(r) {
  try { const j = await r.json(); return j.error ? j.error.message + " (" + j.error.code + ")" : r.statusText; }
  catch (e) { return r.status + " " + r.statusText; }
}

async function submit(files) {
  const fd = new FormData();
  for (const f of files) fd.append("file", f, f.name);
  setState("uploading"); setStatus("Uploading " + files.length + " file(s)...");
  const r = await fetch("v1/jobs", { method: "POST", body: fd });
  if (!r.ok) { setState("error"); setStatus(await apiError(r), true); return; }
  const j = await r.json();
  history.replaceState(null, "", "#job=" + j.id);
  $("jobid").value = j.id;
  await follow(j.id);
}

async function follow(id) {
  setState("waiting");
  for (;;) {
    const r = await fetch("v1/jobs/" + encodeURIComponent(id) + "?wait=10");
    if (!r.ok) { setState("error"); setStatus(await apiError(r), true); return; }
    const j = await r.json();
    $("progress").style.width = Math.round(100 * j.progress.fraction) + "%";
    setStatus("Job " + j.id + ": " + j.state + " (" + j.progress.done + "/" + j.progress.files + " files)");
    if (j.state === "done" || j.state === "failed") { job = j; await show(0); setState(j.state); return; }
  }
}

function selectFile(n) {
  const bs = $("files").querySelectorAll("button");
  bs.forEach((b, i) => b.className = i === n ? "on" : "");
}

async function show(n) {
  current = n;
  $("result").hidden = false;
  const files = $("files"); files.textContent = "";
  job.files.forEach((f, i) => { const b = document.createElement("button"); b.type = "button"; b.textContent = f.name;
    b.onclick = () => show(i); files.appendChild(b); });
  selectFile(n);
  const f = job.files[n];
  $("fname").textContent = f.name;
  $("ferror").textContent = f.error || "";
  const base = "v1/jobs/" + job.id;
  $("audio").src = base + "/audio/" + n;
  const links = $("links"); links.textContent = "";
  const add = (href, text) => { const a = document.createElement("a"); a.href = href; a.textContent = text; links.appendChild(a); };
  const outs = (job.links && job.links.files) || {};
  if (outs["events.csv"]) add(outs["events.csv"], "events.csv");
  if (outs["events.json"]) add(outs["events.json"], "events.json");
  for (const k of Object.keys(outs)) if (k.endsWith(".labels.txt")) add(outs[k], k + " (Audacity)");
  if (job.links && job.links.report) add(job.links.report, "report");
  // The file's result (events.json shape) has the spectrogram and each event's rolled-up labels ("also").
  let duration = f.duration_s || 0, spec = null, events = f.events || [];
  if (!f.error) {
    const r = await fetch(base + "/results/" + n);
    if (r.ok) { const j = await r.json(); const fr = j.files && j.files[0];
      if (fr) { spec = fr.spectrogram; duration = fr.info.duration_s || duration; if (fr.events) events = fr.events; } }
  }
  const tbody = $("events").querySelector("tbody"); tbody.textContent = "";
  const labels = [...new Set(events.map(e => e.label))];
  events.forEach((e, i) => {
    const tr = document.createElement("tr"); tr.className = "event"; tr.dataset.onset = e.onset; tr.dataset.offset = e.offset;
    const c = COLORS[labels.indexOf(e.label) % COLORS.length];
    tr.innerHTML = "<td>" + (i + 1) + "</td><td class=\"label\"><span class=\"sw\"></span></td><td>" + e.onset.toFixed(2) +
      "</td><td>" + e.offset.toFixed(2) + "</td><td>" + e.confidence.toFixed(2) + "</td>";
    tr.querySelector(".sw").style.background = c;
    tr.querySelector(".label").appendChild(document.createTextNode(e.label));
    if (e.kind === "background") {  // a steady sound, reported once for its stretch
      tr.className = "event background";
      const b = document.createElement("span"); b.className = "also"; b.textContent = " [background]";
      tr.querySelector(".label").appendChild(b);
    }
    if (e.also && e.also.length) {  // one sound, one row: the labels rolled up into it
      const a = document.createElement("span"); a.className = "also";
      a.textContent = " (also: " + e.also.map(x => x.label).join(", ") + ")";
      a.title = e.also.map(x => x.label + (x.confidence == null ? "" : " " + x.confidence.toFixed(2))).join("\n");
      tr.querySelector(".label").appendChild(a);
    }
    tr.onclick = () => play(e.onset, e.offset, tr);
    tbody.appendChild(tr);
  });
  $("warnings").textContent = (f.warnings || []).join("; ");
  draw(spec, duration, events, labels);
}

function draw(spec, duration, events, labels) {
  const cv = $("canvas"), box = $("spec");
  box.querySelectorAll(".region").forEach(r => r.remove());
  box.dataset.duration = duration;
  if (spec && spec.data) {
    const bytes = Uint8Array.from(atob(spec.data), ch => ch.charCodeAt(0));
    cv.width = spec.columns; cv.height = spec.bins;
    const ctx = cv.getContext("2d"), img = ctx.createImageData(spec.columns, spec.bins);
    for (let b = 0; b < spec.bins; b++) for (let c = 0; c < spec.columns; c++) {
      const v = bytes[b * spec.columns + c] / 255, o = ((spec.bins - 1 - b) * spec.columns + c) * 4;
      img.data[o] = Math.round(255 * Math.min(1, Math.max(0, 1.6 * v - 0.3)));
      img.data[o + 1] = Math.round(255 * Math.pow(v, 1.4));
      img.data[o + 2] = Math.round(255 * Math.min(1, Math.max(0, 0.6 + 0.8 * v - 1.4 * v * v)));
      img.data[o + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    box.dataset.drawn = "1";
  }
  if (!(duration > 0)) return;
  events.forEach((e, i) => {
    const d = document.createElement("div"); d.className = "region";
    const c = COLORS[labels.indexOf(e.label) % COLORS.length];
    d.style.left = (100 * e.onset / duration) + "%"; d.style.width = (100 * (e.offset - e.onset) / duration) + "%";
    d.style.borderColor = c; d.style.background = c + "33";
    const s = document.createElement("span"); s.textContent = e.label; s.style.top = (2 + 16 * (i % 8)) + "px"; d.appendChild(s);
    box.appendChild(d);
  });
}

function play(onset, offset, tr) {
  const a = $("audio");
  document.querySelectorAll("tr.event.playing").forEach(r => r.classList.remove("playing"));
  tr.classList.add("playing");
  stopAt = offset;
  a.currentTime = onset;
  a.play().catch(() => {});
}
// Stops a played stretch at its offset: timeupdate comes only every ~250 ms, so a timer
// aimed at the offset does it to within a few ms.
function watchStop() {
  clearTimeout(stopTimer);
  const a = $("audio");
  if (stopAt === null || a.paused) return;
  const left = (stopAt - a.currentTime) / (a.playbackRate || 1);
  if (left <= 0.004) { a.pause(); stopAt = null; return; }
  stopTimer = setTimeout(watchStop, Math.min(250, 1000 * left));
}
$("audio").addEventListener("playing", watchStop);
$("audio").addEventListener("timeupdate", () => {
  const a = $("audio"), box = $("spec"), d = parseFloat(box.dataset.duration || "0");
  if (d > 0) { $("cursor").style.display = "block"; $("cursor").style.left = (100 * a.currentTime / d) + "%"; }
  watchStop();
});
$("spec").addEventListener("click", (ev) => {
  const box = $("spec"), d = parseFloat(box.dataset.duration || "0"); if (!(d > 0)) return;
  const rect = box.getBoundingClientRect(); stopAt = null;
  document.querySelectorAll("tr.event.playing").forEach(r => r.classList.remove("playing"));
  $("audio").currentTime = d * (ev.clientX - rect.left) / rect.width; $("audio").play().catch(() => {});
});
$("upload").addEventListener("submit", (ev) => { ev.preventDefault(); const fs = $("file").files;
  if (!fs.length) { setStatus("Choose an audio file first.", true); return; } submit([...fs]); });
$("open").addEventListener("click", () => { const id = $("jobid").value.trim(); if (id) { history.replaceState(null, "", "#job=" + id); follow(id); } });

(async () => {
  const q = new URLSearchParams(location.search), h = new URLSearchParams(location.hash.slice(1));
  if (q.get("demo")) {
    const name = q.get("demo");
    const r = await fetch("demo/" + encodeURIComponent(name));
    if (!r.ok) { setState("error"); setStatus(await apiError(r), true); return; }
    const blob = await r.blob();
    await submit([new File([blob], name, { type: blob.type || "application/octet-stream" })]);
  } else if (h.get("job")) { $("jobid").value = h.get("job"); await follow(h.get("job")); }
})();
)JS";
}

}  // namespace earmark::serve
