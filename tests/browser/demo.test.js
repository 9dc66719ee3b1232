#!/usr/bin/env node
// Browser test of the demo page: starts instcald on an ephemeral port with
// static/ and a model, drives Debian's headless Chromium through
// playwright-core, and checks what a visitor sees. Screenshots go to
// tests/artifacts/. Prints "N passed, N failed" last; exits non-zero on a
// failure.
//
// Environment: INSTCALD (daemon binary), INSTCAL_MODEL (weights; default
// models/default.safetensors if present, else the tiny test model),
// CHROMIUM (default /usr/bin/chromium), ARTIFACTS (screenshot directory).
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..', '..');
const firstExisting = (...p) => p.find((x) => x && fs.existsSync(x));
const INSTCALD = process.env.INSTCALD || firstExisting(path.join(ROOT, 'build/server/instcald'), path.join(ROOT, 'build-web/server/instcald'));
const MODEL = process.env.INSTCAL_MODEL || firstExisting(path.join(ROOT, 'models/default.safetensors'),
  path.join(ROOT, 'tests/golden/fixtures/model_tiny_weights.safetensors'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.ARTIFACTS || path.join(ROOT, 'tests/artifacts');
const TIMEOUT = Number(process.env.DEMO_TIMEOUT_MS || 90000);

let passed = 0, failed = 0;
function check(name, ok, detail = '') {
  if (ok) { passed++; console.log(`ok   ${name}`); }
  else { failed++; console.log(`FAIL ${name}${detail ? ': ' + detail : ''}`); }
  return ok;
}

/* ---------------------------------------------------------------- daemon */
function startDaemon() {
  return new Promise((resolve, reject) => {
    const args = ['--port', '0', '--bind', '127.0.0.1', '--backend', 'pdl', '--model', MODEL,
      '--static_dir', path.join(ROOT, 'static'), '--workers', '2', '--blas_threads', '1', '--log_level', 'info'];
    const proc = spawn(INSTCALD, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '', done = false;
    const timer = setTimeout(() => { if (!done) { done = true; reject(new Error('instcald did not start in 30 s:\n' + log)); } }, 30000);
    proc.stderr.on('data', (d) => {
      log += d;
      const m = /event=listening .*? port=(\d+)/.exec(log);
      if (m && !done) { done = true; clearTimeout(timer); resolve({ proc, port: Number(m[1]), log: () => log }); }
    });
    proc.on('exit', (code) => { if (!done) { done = true; clearTimeout(timer); reject(new Error(`instcald exited (${code}):\n${log}`)); } });
  });
}

function stopDaemon(proc) {
  return new Promise((resolve) => {
    if (!proc || proc.exitCode !== null || proc.signalCode) return resolve();
    const kill = setTimeout(() => { try { process.kill(proc.pid, 'SIGKILL'); } catch (e) { /* gone */ } }, 10000);
    proc.on('exit', () => { clearTimeout(kill); resolve(); });
    try { process.kill(proc.pid, 'SIGTERM'); } catch (e) { clearTimeout(kill); resolve(); }
  });
}

/* ---------------------------------------------------------------- helpers */
const paneDone = (page, id, file, extra = '') =>
  page.waitForSelector(`#pane-${id}[data-state="done"][data-input="${file}"]${extra}`, { timeout: TIMEOUT });

async function paneInfo(page, id) {
  return page.$eval(`#pane-${id}`, (p) => ({
    legend: [...p.querySelectorAll('.legend li')].map((li) => li.dataset.class),
    stats: Object.fromEntries([...p.querySelectorAll('.stats dd')].map((d) => [d.dataset.key, d.textContent])),
    rel: p.querySelectorAll('.chart-rel rect.bar-acc').length,
    diag: p.querySelectorAll('.chart-rel svg > line.diag').length,
    hist: p.querySelectorAll('.chart-hist rect.bar-hist').length,
    time: p.querySelectorAll('.chart-time rect').length,
    relCaption: p.querySelector('.chart-rel figcaption').textContent,
    mode: p.dataset.mode,
    canvas: [p.querySelector('canvas').width, p.querySelector('canvas').height],
  }));
}

async function main() {
  if (!INSTCALD) throw new Error('instcald not found: build it (ninja -C build) or set INSTCALD');
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install -y chromium`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of fs.readdirSync(ARTIFACTS)) if (/^demo-.*\.png$/.test(f)) fs.rmSync(path.join(ARTIFACTS, f));
  console.log(`instcald: ${INSTCALD}\nmodel: ${MODEL}\nchromium: ${CHROMIUM}\nscreenshots: ${ARTIFACTS}`);

  const daemon = await startDaemon();
  const base = `http://127.0.0.1:${daemon.port}/`;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'instcal-chromium-'));
  let ctx;
  const cleanup = async () => {
    if (ctx) await ctx.close().catch(() => {});
    await stopDaemon(daemon.proc);
    fs.rmSync(profile, { recursive: true, force: true });
  };
  process.on('SIGINT', () => { cleanup().then(() => process.exit(130)); });
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1360, height: 900 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = ctx.pages()[0] || await ctx.newPage();
    page.setDefaultTimeout(TIMEOUT);

    // Console errors fail the test, except the one error status a step provokes on purpose.
    const consoleErrors = [];
    let expectStatus = 0;
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      const url = (m.location() && m.location().url) || '';
      if (expectStatus && m.text().includes(`status of ${expectStatus}`) && /\/v1\/segment/.test(url)) return;
      consoleErrors.push(`${m.text()} ${url}`);
    });
    page.on('pageerror', (e) => consoleErrors.push('uncaught: ' + e.message));
    const responses = [];
    page.on('response', async (r) => {
      if (!r.url().endsWith('/v1/segment')) return;
      const body = await r.json().catch(() => null);
      responses.push({ status: r.status(), mode: body && body.calibration && body.calibration.mode, body });
    });

    /* 1. First visit: the page opens on dense fog, none vs instcal-u. */
    await page.goto(base);
    const models = await (await page.request.get(base + 'v1/models')).json();
    const model = models.models[0];
    const classNames = new Set(model.classes.map((c) => c.name));
    await page.waitForSelector('#model-info strong');
    check('model name shown', (await page.textContent('#model-info')).includes(model.name));
    const samples = await page.$$eval('#gallery button', (bs) => bs.map((b) => b.dataset.domain));
    check('gallery lists every domain', ['source', 'fog1', 'fog2', 'fog3', 'night', 'rain', 'style'].every((d) => samples.includes(d)), samples.join(','));
    await paneDone(page, 'a', 'fog3.png');
    await paneDone(page, 'b', 'fog3.png');
    const modeA = await page.$eval('#pane-a .mode', (s) => s.value), modeB = await page.$eval('#pane-b .mode', (s) => s.value);
    check('default comparison is none vs instcal-u', modeA === 'none' && modeB === (model.calibration_modes.includes('instcal-u') ? 'instcal-u' : modeB), `${modeA} vs ${modeB}`);
    await page.waitForSelector('#verdict:not([hidden])');
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-01-first-visit.png') });

    /* 2. Pick another foggy sample from the gallery: both panes re-run. */
    const before = responses.length;
    await page.click('#gallery button[data-domain="fog2"]');
    await paneDone(page, 'a', 'fog2.png');
    await paneDone(page, 'b', 'fog2.png');
    check('picking a sample queries both modes', responses.length - before >= 2, `${responses.length - before} requests`);
    const byMode = {};
    for (const r of responses.slice(before)) if (r.status === 200) byMode[r.mode] = r.body;
    for (const id of ['a', 'b']) {
      const info = await paneInfo(page, id), body = byMode[info.mode];
      if (!check(`pane ${id}: got a 200 result for ${info.mode}`, !!body)) continue;
      const segCats = [...new Set(body.segments.map((s) => s.category))];
      check(`pane ${id}: legend lists the expected classes`, info.legend.length > 0 && info.legend.every((n) => classNames.has(n)) &&
        segCats.every((c) => info.legend.includes(c)), `legend [${info.legend}] segments [${segCats}]`);
      check(`pane ${id}: segments shown`, body.segments.length > 0 && info.stats.segments.startsWith(String(body.segments.length)), info.stats.segments);
      check(`pane ${id}: ECE shown`, body.metrics && info.stats.ece === body.metrics.ece.toFixed(3) && info.relCaption.includes('ECE'), `${info.stats.ece} vs ${body.metrics && body.metrics.ece}`);
      check(`pane ${id}: drift score shown`, Number.isFinite(body.drift_score) && info.stats.drift === body.drift_score.toPrecision(3),
        `${info.stats.drift} vs ${body.drift_score}`);
      check(`pane ${id}: mIoU shown`, /%$/.test(info.stats.miou || ''), info.stats.miou);
      check(`pane ${id}: reliability diagram with diagonal`, info.rel > 0 && info.diag === 1, `${info.rel} bars`);
      check(`pane ${id}: confidence histogram`, info.hist > 0);
      check(`pane ${id}: stage timings`, info.time >= 3, `${info.time} bars`);
      check(`pane ${id}: canvas at image size`, info.canvas[0] === body.image.width && info.canvas[1] === body.image.height, info.canvas.join('x'));
    }
    if (model.name === 'synthcity-small') {
      /* The shipped model, calibrated: the fog2 sample's large classes (over 2% of the
       * ground truth's pixels) must be found, with a sane mIoU. The tiny test model's
       * masks are noise, so this runs only with the shipped one. */
      const truth = JSON.parse(fs.readFileSync(path.join(ROOT, 'static/samples/label_segments.json'), 'utf8'));
      const area = {};
      for (const sg of truth.segments_info) area[sg.category] = (area[sg.category] || 0) + sg.area;
      const big = Object.keys(area).filter((c) => area[c] > 0.02 * truth.width * truth.height);
      const b = await paneInfo(page, 'b'), body = byMode[b.mode];
      const miou = body && body.metrics ? body.metrics.miou : 0;
      check(`shipped model, ${b.mode} on fog2: finds ${big.join(', ')}; mIoU > 40%`,
        big.length >= 3 && big.every((c) => b.legend.includes(c)) && miou > 0.4,
        `legend [${b.legend}], mIoU ${miou}`);
    }
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-02-fog2.png'), fullPage: true });

    /* 3. Hover shows class, instance, score, area. */
    const box = await (await page.$('#pane-b canvas')).boundingBox();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.75);
    await page.waitForSelector('#tooltip:not([hidden])');
    const tip = await page.textContent('#tooltip');
    check('hover tooltip names a class and its area', [...classNames].some((n) => tip.includes(n)) && /area|segment/.test(tip), tip);
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-03-hover.png'), clip: { x: 0, y: Math.max(0, box.y - 60), width: 1360, height: box.height + 140 } });
    await page.mouse.move(2, 2);

    /* 4. Keyboard: switch to the confidence view and lower the opacity. */
    await page.focus('#view-semantic');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    check('keyboard selects the confidence view', await page.$eval('#view-confidence', (r) => r.checked));
    check('confidence colour bar shown', await page.$eval('#pane-a .colorbar', (c) => !c.hidden));
    await page.focus('#opacity');
    for (let i = 0; i < 4; i++) await page.keyboard.press('ArrowLeft');
    check('keyboard changes the opacity', (await page.textContent('#opacity-out')) === '40%', await page.textContent('#opacity-out'));
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-04-confidence.png') });
    await page.click('label[for="view-instance"]');
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-05-instances.png') });
    await page.click('label[for="view-semantic"]');

    /* 5. Switching a pane's mode re-queries the server. */
    const other = model.calibration_modes.find((m) => m === 'tbn') || model.calibration_modes.find((m) => m !== modeA && m !== modeB);
    if (other) {
      const n0 = responses.length;
      await page.selectOption('#pane-b .mode', other);
      await paneDone(page, 'b', 'fog2.png', `[data-mode="${other}"]`);
      await page.waitForFunction(() => !document.querySelector('#pane-b[aria-busy="true"]'));
      check(`switching pane B to ${other} re-queries`, responses.slice(n0).some((r) => r.mode === other && r.status === 200));
      await page.selectOption('#pane-b .mode', modeB);
      await paneDone(page, 'b', 'fog2.png', `[data-mode="${modeB}"]`);
    }

    /* 5b. A smaller network input re-queries both panes with `size`; the masks stay at image size. */
    const sizes = await page.$$eval('#size option', (o) => o.map((x) => Number(x.value)).filter((v) => v > 0));
    if (check('network input sizes offered', sizes.length > 0, 'no size option')) {
      const small = Math.min(...sizes), n1 = responses.length;
      await page.selectOption('#size', String(small));
      await paneDone(page, 'a', 'fog2.png', `[data-size="${small}"]`);
      await paneDone(page, 'b', 'fog2.png', `[data-size="${small}"]`);
      const got = responses.slice(n1).filter((r) => r.status === 200 && r.body && r.body.network_input);
      const sa = await paneInfo(page, 'a');
      check(`network input ${small} px: both panes re-queried at that size`, got.length >= 2 &&
        got.every((r) => Math.min(r.body.network_input.width, r.body.network_input.height) === small), JSON.stringify(got.map((r) => r.body.network_input)));
      check('network input shown, masks still at image size', (sa.stats.net || '').includes(String(small)) &&
        sa.canvas[0] === got[0].body.image.width && sa.canvas[1] === got[0].body.image.height, `${sa.stats.net} ${sa.canvas}`);
      await page.selectOption('#size', '0');
      await paneDone(page, 'a', 'fog2.png', `[data-size="${model.network_input.min_size_test}"]`);
      await paneDone(page, 'b', 'fog2.png', `[data-size="${model.network_input.min_size_test}"]`);
    }

    /* 6. An own image (no ground truth): results and confidence charts, no ECE. */
    await page.setInputFiles('#file', { name: 'my-street.png', mimeType: 'image/png', buffer: fs.readFileSync(path.join(ROOT, 'static/samples/night.png')) });
    await paneDone(page, 'a', 'my-street.png');
    await paneDone(page, 'b', 'my-street.png');
    const own = await paneInfo(page, 'a');
    check('own image: segments and histogram, no ECE', own.legend.length > 0 && own.hist > 0 && own.stats.ece === undefined && own.rel === 0,
      JSON.stringify(own.stats));
    check('own image: reliability explains it needs a ground truth', /ground truth/.test(await page.textContent('#pane-a .chart-rel')));

    /* 7. Errors in plain words: 413, 415 and 503 as the server sends them (faked
     * here: provoking them for real needs a 20 MB upload or a saturated queue). */
    const fakes = [[413, 'too_large', /too large/], [415, 'unsupported_media_type', /not supported/], [503, 'queue_full', /busy/]];
    for (const [status, code, re] of fakes) {
      expectStatus = status;
      await page.route('**/v1/segment', (route) => route.fulfill({ status, contentType: 'application/json',
        headers: status === 503 ? { 'Retry-After': '1' } : {}, body: JSON.stringify({ error: { code, message: 'x' } }) }), { times: 1 });
      await page.selectOption('#pane-a .mode', model.calibration_modes.find((m) => m !== 'none' && m !== 'manual') || 'none');
      await page.waitForSelector('#pane-a .error:not([hidden])');
      const text = await page.textContent('#pane-a .error');
      check(`${status} ${code}: plain words`, re.test(text), text);
      if (status === 503) await page.screenshot({ path: path.join(ARTIFACTS, 'demo-06-busy.png') });
      await page.selectOption('#pane-a .mode', 'none');
      await paneDone(page, 'a', 'my-street.png', '[data-mode="none"]');
    }
    expectStatus = 0;

    /* 8. A corrupt upload gets a plain-words error. */
    expectStatus = 400;
    const junk = Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), Buffer.from('this is not really a PNG file '.repeat(20))]);
    await page.setInputFiles('#file', { name: 'corrupt.png', mimeType: 'image/png', buffer: junk });
    await page.waitForSelector('#pane-a .error:not([hidden])');
    await page.waitForSelector('#pane-b .error:not([hidden])');
    const errText = await page.textContent('#pane-a .error');
    check('corrupt file: plain error message', /could not be read as an image/.test(errText), errText);
    check('corrupt file: server said 400', responses.slice(-2).every((r) => r.status === 400 && r.body && r.body.error));
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-07-corrupt.png') });
    expectStatus = 0;

    /* 9. Narrow screen: one column, no sideways scrolling. */
    await page.setViewportSize({ width: 390, height: 844 });
    await page.click('#gallery button[data-domain="fog3"]');
    await paneDone(page, 'a', 'fog3.png');
    await paneDone(page, 'b', 'fog3.png');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check('narrow screen: no horizontal overflow', overflow <= 0, `${overflow}px too wide`);
    const cols = await page.evaluate(() => {
      const a = document.querySelector('#pane-a').getBoundingClientRect(), b = document.querySelector('#pane-b').getBoundingClientRect();
      return b.top >= a.bottom - 1;
    });
    check('narrow screen: panes stacked', cols);
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-08-narrow.png'), fullPage: true });

    check('no console errors', consoleErrors.length === 0, consoleErrors.join(' | '));
  } finally {
    await cleanup();
  }
}

main().catch((e) => { check('test ran to the end', false, e.stack || String(e)); })
  .finally(() => {
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
  });
