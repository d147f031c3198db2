// The web page as a user drives it: Debian's chromium (headless, via playwright-core) against the
// real `clouddetect serve` with the real yolo-fastest-1.1 model, on loopback only.
// Usage: node --test browser_e2e.test.mjs   (env CLOUDDETECT_BIN, CLOUDDETECT_SHARED,
// CLOUDDETECT_WEB_ARTIFACTS = where screenshots go, default the OS temp folder)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const BINARY = process.env.CLOUDDETECT_BIN || path.join(repo, 'build', 'clouddetect');
const SHARED = process.env.CLOUDDETECT_SHARED || path.join(repo, '..', 'shared');
const IMAGES = path.join(SHARED, 'data', 'coco128', 'images');
const ARTIFACTS = process.env.CLOUDDETECT_WEB_ARTIFACTS || os.tmpdir();
const GIRAFFE = path.join(IMAGES, '000000000025.jpg');
const SECOND = path.join(IMAGES, '000000000009.jpg');
const POD = 'e2e-pod-7'; // X-Served-By comes from POD_NAME
const TIMEOUT_MS = 30000;
const MAX_BODY = 4 * 1024 * 1024; // small, so that the 413 test needs only a 4 MiB file

let server;       // { proc, port, base, log }
let context;      // playwright persistent context (fresh profile)
let profileDir;
let scratch;      // temp folder for test files
const pageErrors = [];

// The port comes from --port-file (written atomically once listening), never from the log; the same
// start-and-wait as tools/devkit.py, which the Python tests and tools use.
function startServer() {
  return new Promise((resolve, reject) => {
    const portFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'clouddetect-port-')), 'port');
    const args = ['serve', '--model', path.join(SHARED, 'models', 'yolo-fastest-1.1'),
      '--host', '127.0.0.1', '--port', '0', '--port-file', portFile, '--workers', '1', '--log-format', 'text',
      '--max-body-bytes', String(MAX_BODY)];
    const proc = spawn(BINARY, args, { env: { ...process.env, POD_NAME: POD }, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const collect = (chunk) => { log += chunk; };
    proc.stdout.on('data', collect);
    proc.stderr.on('data', collect);
    const deadline = Date.now() + TIMEOUT_MS;
    const poll = setInterval(() => {
      const text = fs.existsSync(portFile) ? fs.readFileSync(portFile, 'utf8').trim() : '';
      if (text) {
        clearInterval(poll);
        fs.rmSync(path.dirname(portFile), { recursive: true, force: true });
        proc.port = Number(text);
        resolve({ proc, port: proc.port, base: `http://127.0.0.1:${proc.port}`, log: () => log });
      } else if (Date.now() > deadline) {
        clearInterval(poll);
        reject(new Error(`server wrote no port to ${portFile}:\n${log}`));
      }
    }, 50);
    proc.on('exit', (code) => {
      clearInterval(poll);
      reject(new Error(`server exited with ${code}:\n${log}`));
    });
  });
}

async function waitReady(base) {
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) return;
    } catch (_) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server never became ready');
}

// The API called directly, as any client would.
async function apiDetect(file) {
  const body = { id: `direct-${path.basename(file)}`, image: fs.readFileSync(file).toString('base64') };
  const response = await fetch(`${server.base}/api/object_detection`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.equal(response.status, 200);
  return { body: await response.json(), servedBy: response.headers.get('x-served-by') };
}

async function newPage(viewport = { width: 1280, height: 900 }) {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // Chromium logs every HTTP error answer; the 422 and 413 provoked below are expected.
    if (m.type() === 'error' && !/status of (422|413) /.test(m.text())) pageErrors.push(`console: ${m.text()}`);
  });
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) return; // data:, blob:
    if (url.hostname !== '127.0.0.1') pageErrors.push(`request off loopback: ${r.url()}`);
  });
  const response = await page.goto(`${server.base}/`);
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-type'], /^text\/html/);
  return page;
}

// The objects as the page lists them, in page order.
function listedObjects(page) {
  return page.$$eval('[data-testid="object"]',
    (items) => items.map((li) => ({ label: li.dataset.label, accuracy: Number(li.dataset.accuracy) })));
}

async function waitForAnswer(page) {
  await page.waitForFunction(() => document.querySelector('[data-testid="http-status"]').textContent !== '–',
    null, { timeout: TIMEOUT_MS });
}

// Non-transparent overlay pixels on the outline of each box, scaled to the displayed size.
function boxPixelsDrawn(page) {
  return page.evaluate(() => {
    const img = document.getElementById('preview');
    const canvas = document.getElementById('overlay');
    const ctx = canvas.getContext('2d');
    const raw = JSON.parse(document.querySelector('[data-testid="raw-json"]').textContent);
    const k = canvas.width / img.naturalWidth; // canvas pixels per image pixel
    return raw.objects.map((o) => {
      const r = o.rectangle;
      // middle of the left edge and of the bottom edge
      const points = [[r.left, r.top + r.height / 2], [r.left + r.width / 2, r.top + r.height]];
      return points.every(([x, y]) => {
        const px = Math.min(canvas.width - 1, Math.round(x * k));
        const py = Math.min(canvas.height - 1, Math.round(y * k));
        return ctx.getImageData(Math.max(0, px - 1), Math.max(0, py - 1), 3, 3).data.some((v, i) => i % 4 === 3 && v > 0);
      });
    });
  });
}

function screenshotPath(name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}

before(async () => {
  assert.ok(fs.existsSync(BINARY), `no binary at ${BINARY}`);
  assert.ok(fs.existsSync(GIRAFFE), `no image at ${GIRAFFE}`);
  server = await startServer();
  await waitReady(server.base);
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'clouddetect-web-'));
  profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'clouddetect-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-proxy-server'],
  });
});

after(async () => {
  if (context) await context.close();
  if (server) {
    server.proc.removeAllListeners('exit');
    const exited = new Promise((r) => server.proc.once('exit', r));
    server.proc.kill('SIGTERM');
    await exited;
  }
  for (const dir of [profileDir, scratch]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('uploading a coco128 image shows the same objects as the API, with boxes and who served it', async () => {
  const expected = await apiDetect(GIRAFFE);
  assert.ok(expected.body.objects.length > 0, 'the model finds something in the giraffe image');
  assert.equal(expected.servedBy, POD);

  const page = await newPage();
  await page.setInputFiles('[data-testid="file-input"]', GIRAFFE);
  await waitForAnswer(page);
  await page.waitForSelector('[data-testid="object"]', { timeout: TIMEOUT_MS });
  await page.waitForFunction(() => document.getElementById('preview').complete);

  const listed = await listedObjects(page);
  const labels = (objs) => objs.map((o) => o.label).sort();
  assert.deepEqual(labels(listed), labels(expected.body.objects));
  assert.ok(listed.map((o) => o.label).includes('giraffe'), `labels: ${labels(listed)}`);
  for (const [i, o] of expected.body.objects.entries()) {
    assert.ok(Math.abs(listed[i].accuracy - o.accuracy) < 1e-9, `${o.label} confidence`);
  }

  assert.equal(await page.textContent('[data-testid="served-by"]'), POD);
  assert.match(await page.textContent('[data-testid="elapsed"]'), /^\d+ ms$/);
  assert.match(await page.textContent('[data-testid="http-status"]'), /^200/);
  assert.equal(await page.isHidden('[data-testid="error"]'), true);
  assert.match(await page.textContent('[data-testid="status"]'), /Found \d+ objects? in \d+ ms, served by e2e-pod-7/);

  // The raw JSON panel is the API's answer, with the id the page generated (a UUID).
  const raw = JSON.parse(await page.textContent('[data-testid="raw-json"]'));
  assert.match(raw.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(await page.textContent('[data-testid="request-id"]'), raw.id);
  assert.deepEqual(raw.objects, expected.body.objects);

  // Every box is drawn where the API says, scaled to the displayed image.
  const geometry = await page.evaluate(() => {
    const img = document.getElementById('preview');
    const canvas = document.getElementById('overlay');
    return { shown: img.clientWidth, natural: img.naturalWidth, canvasCss: canvas.clientWidth };
  });
  assert.ok(geometry.shown > 0 && geometry.shown <= geometry.natural, JSON.stringify(geometry));
  assert.equal(geometry.canvasCss, geometry.shown);
  assert.deepEqual(await boxPixelsDrawn(page), expected.body.objects.map(() => true));

  const shot = screenshotPath('web_e2e_giraffe.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);
  await page.close();
});

test('a text file gets a clear "not an image" message and no objects', async () => {
  const text = path.join(scratch, 'notes.txt');
  fs.writeFileSync(text, 'These are my notes, not a picture.\n');
  const page = await newPage();
  await page.setInputFiles('[data-testid="file-input"]', text);
  await page.waitForSelector('[data-testid="error"]:not([hidden])', { timeout: TIMEOUT_MS });
  const message = await page.textContent('[data-testid="error"]');
  assert.match(message, /Not an image/);
  assert.match(message, /cannot be decoded/); // the server's own words
  assert.match(await page.textContent('[data-testid="http-status"]'), /^422/);
  assert.equal(await page.textContent('[data-testid="served-by"]'), POD);
  assert.equal((await listedObjects(page)).length, 0);
  const shot = screenshotPath('web_e2e_error.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);
  await page.close();
});

test('a file over the body limit gets a clear "too large" message', async () => {
  const big = path.join(scratch, 'huge.jpg');
  fs.writeFileSync(big, Buffer.alloc(MAX_BODY, 0xff)); // base64 makes it a third larger still
  const page = await newPage();
  await page.setInputFiles('[data-testid="file-input"]', big);
  await page.waitForSelector('[data-testid="error"]:not([hidden])', { timeout: TIMEOUT_MS });
  assert.match(await page.textContent('[data-testid="error"]'), /Too large/);
  assert.match(await page.textContent('[data-testid="http-status"]'), /^413/);
  await page.close();
});

test('the server-side annotated JPEG is shown when asked for', async () => {
  const page = await newPage();
  await page.check('[data-testid="annotate"]');
  await page.setInputFiles('[data-testid="file-input"]', SECOND);
  await page.waitForSelector('[data-testid="annotated-image"]', { state: 'visible', timeout: TIMEOUT_MS });
  await page.waitForFunction(() => document.querySelector('[data-testid="annotated-image"]').naturalWidth > 0);
  const sizes = await page.evaluate(() => ({
    annotated: document.querySelector('[data-testid="annotated-image"]').naturalWidth,
    original: document.getElementById('preview').naturalWidth,
  }));
  assert.equal(sizes.annotated, sizes.original);
  assert.match(await page.textContent('[data-testid="raw-json"]'), /"annotated_image": "<\d+ base64 characters/);
  await page.close();
});

test('keyboard only: Tab reaches the file button and Enter opens the chooser', async () => {
  const page = await newPage();
  let focused = '';
  for (let i = 0; i < 5 && focused !== 'file'; i += 1) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement.id);
  }
  assert.equal(focused, 'file');
  // Enter (or, for a focused file input, Space) opens the chooser; under heavy CI load Chromium
  // has been seen to drop the first key's activation, so Space is tried if Enter brought nothing.
  let chooser;
  for (const key of ['Enter', 'Space']) {
    try {
      [chooser] = await Promise.all([page.waitForEvent('filechooser', { timeout: 10000 }), page.keyboard.press(key)]);
      break;
    } catch (error) {
      if (key === 'Space') throw error;
    }
  }
  await chooser.setFiles(GIRAFFE);
  await page.waitForSelector('[data-testid="object"]', { timeout: TIMEOUT_MS });
  await page.close();
});

test('drag-and-drop and paste send the image too', async () => {
  const page = await newPage();
  const bytes = fs.readFileSync(GIRAFFE).toString('base64');
  for (const kind of ['drop', 'paste']) {
    await page.evaluate(([b64, how]) => {
      document.querySelector('[data-testid="http-status"]').textContent = '–';
      const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([data], 'giraffe.jpg', { type: 'image/jpeg' }));
      const event = how === 'drop'
        ? new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true })
        : new ClipboardEvent('paste', { clipboardData: transfer, bubbles: true, cancelable: true });
      document.getElementById(how === 'drop' ? 'drop' : 'status').dispatchEvent(event);
    }, [bytes, kind]);
    await waitForAnswer(page);
    await page.waitForSelector('[data-testid="object"][data-label="giraffe"]', { timeout: TIMEOUT_MS });
  }
  await page.close();
});

test('phone width: nothing overflows sideways and the boxes still fit the image', async () => {
  const page = await newPage({ width: 390, height: 844 });
  await page.setInputFiles('[data-testid="file-input"]', GIRAFFE);
  await page.waitForSelector('[data-testid="object"]', { timeout: TIMEOUT_MS });
  const layout = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    image: document.getElementById('preview').getBoundingClientRect().width,
    canvas: document.getElementById('overlay').getBoundingClientRect().width,
  }));
  assert.ok(layout.scroll <= 390, JSON.stringify(layout));
  assert.ok(layout.image <= 390 && Math.abs(layout.canvas - layout.image) < 1, JSON.stringify(layout));
  assert.ok((await boxPixelsDrawn(page)).every(Boolean));
  const shot = screenshotPath('web_e2e_phone.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);
  await page.close();
});

test('no script errors and no request off loopback', () => {
  // The favicon is a data: URL, so not even a 404 for it shows up here.
  assert.deepEqual(pageErrors, []);
});
