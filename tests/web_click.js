// Drives the web page in headless Chromium the way a person does, for test_serve: opens URL
// (e.g. /?demo=speech.wav, which uploads the clip as a job), waits for the events table,
// clicks an event row with the mouse, follows the audio player while it plays, then clicks
// the spectrogram. Prints one JSON object with what it saw; the test judges it.
// Talks the DevTools protocol over --remote-debugging-pipe (fds 3 and 4): no npm packages.
//   node tests/web_click.js CHROMIUM URL PROFILE_DIR
'use strict';
const { spawn } = require('node:child_process');

const [chromium, url, profile] = process.argv.slice(2);
if (!chromium || !url || !profile) {
  console.error('usage: node web_click.js CHROMIUM URL PROFILE_DIR');
  process.exit(2);
}
const browser = spawn(chromium, ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--remote-debugging-pipe',
  `--user-data-dir=${profile}`, '--window-size=1200,900', 'about:blank'],
{ stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
const toBrowser = browser.stdio[3];
const fromBrowser = browser.stdio[4];
function fail(message) {
  console.error(`web_click: ${message}`);
  browser.kill('SIGKILL');
  process.exit(1);
}
browser.on('exit', (code) => fail(`chromium exited (${code}) before the end`));
setTimeout(() => fail('no result within 150 s'), 150000).unref();

let nextId = 0;
let buffered = '';
const pending = new Map();
fromBrowser.on('data', (chunk) => {
  buffered += chunk.toString('utf8');
  for (let end; (end = buffered.indexOf('\0')) >= 0;) {
    const message = JSON.parse(buffered.slice(0, end));
    buffered = buffered.slice(end + 1);
    const done = message.id !== undefined && pending.get(message.id);
    if (!done) continue;
    pending.delete(message.id);
    if (message.error) fail(`${done.method}: ${message.error.message}`);
    done.resolve(message.result);
  }
});
function send(method, params = {}, sessionId = undefined) {
  return new Promise((resolve) => {
    const message = { id: ++nextId, method, params };
    if (sessionId) message.sessionId = sessionId;
    pending.set(message.id, { method, resolve });
    toBrowser.write(JSON.stringify(message) + '\0');
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  const evaluate = async (expression) => {
    const r = await send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, sessionId);
    if (r.exceptionDetails) fail(`page script failed: ${r.exceptionDetails.text} in ${expression.slice(0, 80)}`);
    return r.result.value;
  };
  const click = async (x, y) => {
    for (const type of ['mousePressed', 'mouseReleased'])
      await send('Input.dispatchMouseEvent', { type, x, y, button: 'left', clickCount: 1 }, sessionId);
  };
  const player = () => evaluate(`(() => { const a = document.getElementById("audio");
    const rows = [...document.querySelectorAll("tr.event")];
    return { t: a.currentTime, paused: a.paused, playing_row: rows.findIndex(r => r.classList.contains("playing")) }; })()`);

  await send('Page.navigate', { url }, sessionId);
  let state = '';
  for (let i = 0; i < 240 && state !== 'done' && state !== 'failed' && state !== 'error'; ++i) {
    await sleep(500);
    state = await evaluate('document.body.dataset.state || ""');
  }
  const result = { state, status: await evaluate('document.getElementById("status").textContent') };
  result.rows = await evaluate(`[...document.querySelectorAll("tr.event")].map(r => ({
    label: r.querySelector(".label").textContent, onset: +r.dataset.onset, offset: +r.dataset.offset }))`);
  if (state !== 'done' || result.rows.length === 0) {
    console.log(JSON.stringify(result));
    process.exit(0);
  }
  // The row to click: the shortest event that neither starts at 0 (so the seek shows) nor
  // ends with the file (so it is the page that stops the playing, not the end of the audio).
  const duration = await evaluate('+document.getElementById("spec").dataset.duration');
  let row = -1;
  result.rows.forEach((r, i) => {
    // Long enough (0.5 s) to see it playing between its onset and its offset: boundaries placed
    // from the signal give some events (a door slam) less than 0.1 s.
    const inside = r.onset > 0 && r.offset < duration - 0.5 && r.offset - r.onset >= 0.5;
    if (inside && (row < 0 || r.offset - r.onset < result.rows[row].offset - result.rows[row].onset)) row = i;
  });
  if (row < 0) row = 0;
  result.clicked_row = row;
  await evaluate(`new Promise((resolve) => { const a = document.getElementById("audio");
    if (a.readyState >= 1) resolve(); else a.addEventListener("loadedmetadata", () => resolve(), { once: true }); })`);
  const box = await evaluate(`(() => { const r = document.querySelectorAll("tr.event")[${row}];
    r.scrollIntoView({ block: "center" }); const b = r.getBoundingClientRect();
    return { x: b.left + b.width / 2, y: b.top + b.height / 2 }; })()`);
  await click(box.x, box.y);
  // Follow the player until it stops by itself (at the event's offset) or for length + 3 s.
  const { onset, offset } = result.rows[row];
  result.samples = [];
  const until = Date.now() + 1000 * (offset - onset + 3);
  for (;;) {
    await sleep(100);
    const p = await player();
    result.samples.push(p);
    if ((p.paused && result.samples.some((s) => !s.paused)) || Date.now() > until) break;
  }
  // A click a quarter into the spectrogram seeks there and plays on.
  const spec = await evaluate(`(() => { const s = document.getElementById("spec"); s.scrollIntoView({ block: "center" });
    const b = s.getBoundingClientRect(); return { x: b.left + 0.25 * b.width, y: b.top + b.height / 2,
    duration: +s.dataset.duration }; })()`);
  await click(spec.x, spec.y);
  await sleep(300);
  result.seek = { duration: spec.duration, fraction: 0.25, ...(await player()) };
  console.log(JSON.stringify(result));
  browser.removeAllListeners('exit');
  browser.kill('SIGKILL');
  process.exit(0);
})().catch((e) => fail(e.stack || String(e)));
