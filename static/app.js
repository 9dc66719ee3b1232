/* InstCal Server demo page: plain JavaScript, no libraries, no build step.
 *
 * Flow: GET /v1/models (classes, colours, calibration modes, limits) and
 * samples/samples.json -> pick an input (sample with ground truth, dropped
 * or chosen file) -> each of the two panes POSTs /v1/segment with its own
 * calibration mode -> masks (base64 PNGs) are decoded here, byte-exact, and
 * drawn over the image; metrics and charts come from the JSON.
 * docs/demo.md describes the page; docs/api.md the API. */
'use strict';

const OUTPUTS = 'panoptic,semantic,confidence';
const FIRST_SAMPLE = 'fog3';          // the page opens on this domain: the point in ten seconds
const DEFAULT_MODES = ['none', 'instcal-u'];

/* Words for the calibration modes the server may report (docs/api.md);
 * unknown modes are shown by their name. */
const MODE_INFO = {
  'none': ['No calibration', 'BatchNorm keeps the statistics learnt in training.'],
  'manual': ['Manual mix', 'One strength m for every layer blends training and image statistics.'],
  'tbn': ['Test-time BN', 'BatchNorm uses only the statistics of this image.'],
  'instcal-u': ['InstCal-U', 'A learnt, per-channel blend of training and image statistics.'],
  'instcal-c': ['InstCal-C', 'A small network predicts the blend for this particular image.'],
  'instcal-g': ['InstCal-G', 'Blends in this image\'s statistics only as far as they look shifted.'],
  'instcal-e': ['InstCal-E', 'Averages the InstCal-G answer and the test-time BN answer of the mirrored image (two passes, slower).'],
  'tent': ['TENT', 'A few entropy-minimisation steps on this image, then reset.'],
};
const modeName = (m) => (MODE_INFO[m] ? MODE_INFO[m][0] : m);

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
};
const SVG_NS = 'http://www.w3.org/2000/svg';
const svgEl = (tag, attrs = {}, text) => {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
};
const fmt = (v, d = 3) => (v == null || !Number.isFinite(v) ? '–' : v.toFixed(d));
const pct = (v, d = 1) => (v == null || !Number.isFinite(v) ? '–' : (100 * v).toFixed(d) + '%');
const ms = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + ' ms';

/* ------------------------------------------------------------------ PNG codec
 * Masks must be read byte-exact (palette indices, segment ids), which a
 * canvas does not promise, so PNGs are decoded here with the browser's own
 * zlib (DecompressionStream). Supports 8-bit gray, RGB, palette, gray+alpha
 * and RGBA, non-interlaced: what the server and SynthCity write. */
async function inflate(bytes, format = 'deflate') {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream(format));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
async function deflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function decodePng(buf) {
  const b = new Uint8Array(buf);
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (b.length < 8 || sig.some((v, i) => b[i] !== v)) throw new Error('not a PNG');
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let w = 0, h = 0, depth = 0, ctype = 0, interlace = 0, off = 8, palette = null;
  const idat = [];
  while (off + 8 <= b.length) {
    const n = dv.getUint32(off), type = String.fromCharCode(...b.subarray(off + 4, off + 8));
    const data = b.subarray(off + 8, off + 8 + n);
    if (type === 'IHDR') {
      w = dv.getUint32(off + 8); h = dv.getUint32(off + 12);
      depth = data[8]; ctype = data[9]; interlace = data[12];
    } else if (type === 'PLTE') palette = data.slice();
    else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + n;
  }
  const ch = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[ctype];
  if (depth !== 8 || !ch || interlace) throw new Error(`unsupported PNG (depth ${depth}, type ${ctype})`);
  const all = new Uint8Array(idat.reduce((s, d) => s + d.length, 0));
  idat.reduce((o, d) => (all.set(d, o), o + d.length), 0);
  const raw = await inflate(all);
  const stride = w * ch, out = new Uint8Array(stride * h);
  for (let y = 0, o = 0; y < h; y++, o += stride + 1) {
    const f = raw[o], row = out.subarray(y * stride, (y + 1) * stride);
    const prev = y ? out.subarray((y - 1) * stride, y * stride) : null;
    row.set(raw.subarray(o + 1, o + 1 + stride));
    for (let x = 0; x < stride; x++) {
      const a = x >= ch ? row[x - ch] : 0, up = prev ? prev[x] : 0, c = prev && x >= ch ? prev[x - ch] : 0;
      if (f === 1) row[x] = (row[x] + a) & 255;
      else if (f === 2) row[x] = (row[x] + up) & 255;
      else if (f === 3) row[x] = (row[x] + ((a + up) >> 1)) & 255;
      else if (f === 4) {
        const p = a + up - c, pa = Math.abs(p - a), pb = Math.abs(p - up), pc = Math.abs(p - c);
        row[x] = (row[x] + (pa <= pb && pa <= pc ? a : pb <= pc ? up : c)) & 255;
      }
    }
  }
  return { w, h, ch, data: out, palette };
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/* An 8-bit RGB PNG of w*h*3 bytes (filter 0 on every row). */
async function encodeRgbPng(w, h, rgb) {
  const raw = new Uint8Array((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) raw.set(rgb.subarray(y * w * 3, (y + 1) * w * 3), y * (w * 3 + 1) + 1);
  const chunk = (type, data) => {
    const out = new Uint8Array(12 + data.length), dv = new DataView(out.buffer);
    dv.setUint32(0, data.length);
    for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
    out.set(data, 8);
    dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
  };
  const ihdr = new Uint8Array(13), dv = new DataView(ihdr.buffer);
  dv.setUint32(0, w); dv.setUint32(4, h);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return new Blob([new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', await deflate(raw)), chunk('IEND', new Uint8Array(0))], { type: 'image/png' });
}

function base64Bytes(s) {
  const bin = atob(s), out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/* ------------------------------------------------------------------ state */
const state = {
  model: null,          // GET /v1/models entry
  classes: [],          // index = class id
  modes: [],
  limits: {},
  samples: [],
  samplesBase: 'samples/',
  input: null,          // {kind, title, blob, filename, label: {png, segments, note}|null, bitmap}
  view: 'semantic',
  opacity: 0.6,
  outlines: true,
  size: 0,              // network input short side sent as `size`; 0 = the model's own
  panes: [],
  labelCache: new Map(),
  pick: 0,
};

/* ------------------------------------------------------------------ errors in plain words */
function plainError(status, code, message, retryAfter) {
  const lim = state.limits || {};
  const mb = lim.max_upload_bytes ? (lim.max_upload_bytes / 1048576).toFixed(0) + ' MB' : 'the limit';
  const mp = lim.max_pixels ? (lim.max_pixels / 1e6).toFixed(0) + ' megapixels' : '';
  switch (code) {
    case 'too_large':
      return ['This image is too large.', `The server accepts uploads up to ${mb}${mp ? ' and ' + mp : ''}. Try a smaller or downscaled copy.`];
    case 'bad_image':
    case 'missing_image':
      return ['This file could not be read as an image.', 'It may be damaged, empty, or not really a JPEG or PNG. Try another file.'];
    case 'bad_label':
      return ['The ground-truth label was not accepted.', message || ''];
    case 'unsupported_media_type':
      return ['This file type is not supported.', 'Please use a JPEG or PNG image.'];
    case 'queue_full':
      return ['The server is busy right now.', `All workers are in use. Try again${retryAfter ? ` in ${retryAfter} s` : ' in a moment'}.`];
    case 'shutting_down':
    case 'not_ready':
      return ['The server is restarting.', 'Try again in a few seconds.'];
    case 'deadline_exceeded':
      return ['The server took too long.', 'It is handling many requests; try again, or use a smaller image.'];
    case 'network':
      return ['Could not reach the server.', 'Check that instcald is running, then try again.'];
    default:
      if (status === 413) return plainError(status, 'too_large', message);
      if (status === 415) return plainError(status, 'unsupported_media_type', message);
      if (status === 503) return plainError(status, 'queue_full', message, retryAfter);
      return [`The server could not segment this image (${status || 'error'}).`, message || ''];
  }
}

/* ------------------------------------------------------------------ ground truth of samples */
/* A sample's label is a COCO-panoptic PNG plus its segments_info JSON next
 * to it (label_panoptic.png -> label_segments.json). Its categories are
 * matched to the model's classes by name; label segments of classes the
 * model does not have become void (the PNG is rewritten here), so metrics
 * cover the classes both know. */
async function sampleLabel(sample) {
  if (!sample.label) return null;
  const key = sample.label;
  if (state.labelCache.has(key)) return state.labelCache.get(key);
  const segPath = sample.label_segments || sample.label.replace(/panoptic\.png$/, 'segments.json');
  const [pngRes, segRes] = await Promise.all([fetch(state.samplesBase + sample.label), fetch(state.samplesBase + segPath)]);
  if (!pngRes.ok || !segRes.ok) return null;
  const pngBuf = await pngRes.arrayBuffer();
  const doc = await segRes.json();
  const info = Array.isArray(doc) ? doc : doc.segments_info;
  const catName = new Map((doc.categories || []).map((c) => [c.id, c.name]));
  const byName = new Map(state.classes.map((c) => [String(c.name).toLowerCase(), c.id]));
  const kept = [], dropped = new Set(), droppedNames = new Set();
  let same = true;
  for (const s of info) {
    const name = String(s.category || catName.get(s.category_id) || '').toLowerCase();
    const id = byName.get(name);
    if (id == null) { dropped.add(s.id); droppedNames.add(name || `#${s.category_id}`); continue; }
    if (id !== s.category_id) same = false;
    kept.push({ id: s.id, category_id: id, iscrowd: s.iscrowd || 0 });
  }
  let result = null;
  if (kept.length) {
    let png = new Blob([pngBuf], { type: 'image/png' });
    if (dropped.size) {
      const img = await decodePng(pngBuf);
      const rgb = new Uint8Array(img.w * img.h * 3);
      for (let i = 0, j = 0; i < img.w * img.h; i++, j += img.ch) {
        const id = img.data[j] | (img.data[j + 1] << 8) | (img.data[j + 2] << 16);
        if (!dropped.has(id)) rgb.set(img.data.subarray(j, j + 3), i * 3);
      }
      png = await encodeRgbPng(img.w, img.h, rgb);
    }
    const note = droppedNames.size
      ? `This model has no class for ${[...droppedNames].join(', ')}; those parts of the ground truth are left out of ECE, mIoU and PQ.`
      : '';
    result = { png, segments: JSON.stringify(kept), note, remapped: !same || dropped.size > 0 };
  } else {
    result = { png: null, segments: null, note: 'The sample\u2019s ground truth uses none of this model\u2019s classes, so no ECE or mIoU can be computed.' };
  }
  state.labelCache.set(key, result);
  return result;
}

/* ------------------------------------------------------------------ inputs */
async function chooseSample(sample, button) {
  const pick = ++state.pick;   // a later click wins over a slower earlier one
  for (const b of document.querySelectorAll('.gallery button')) b.setAttribute('aria-pressed', String(b === button));
  const res = await fetch(state.samplesBase + sample.file);
  if (!res.ok) return;
  const blob = await res.blob();
  let label = null;
  try { label = await sampleLabel(sample); } catch (e) { label = null; }
  if (pick !== state.pick) return;
  setInput({ kind: 'sample', title: sample.title || sample.file, domain: sample.domain, blob, filename: sample.file, label });
  location.hash = 'sample=' + encodeURIComponent(sample.domain || sample.file);
}

function chooseFile(file) {
  if (!file) return;
  state.pick++;
  for (const b of document.querySelectorAll('.gallery button')) b.setAttribute('aria-pressed', 'false');
  history.replaceState(null, '', location.pathname + location.search);
  setInput({ kind: 'file', title: file.name, blob: file, filename: file.name, label: null });
}

async function setInput(input) {
  state.input = input;
  input.bitmap = null;
  try { input.bitmap = await createImageBitmap(input.blob); } catch (e) { input.bitmap = null; }
  if (state.input !== input) return;
  const cap = $('#input-caption');
  cap.textContent = input.kind === 'sample'
    ? `${input.title} · SynthCity sample with ground truth`
    : `${input.title} · ${(input.blob.size / 1024).toFixed(0)} KB · no ground truth`;
  const note = $('#label-note');
  note.hidden = !(input.label && input.label.note);
  note.textContent = input.label && input.label.note ? input.label.note : '';
  $('#verdict').hidden = true;
  for (const p of state.panes) p.run();
}

/* ------------------------------------------------------------------ colour maps */
// Confidence heat map: viridis-like ramp (dark purple = unsure, yellow = sure).
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
const RAMP_LUT = (() => {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (RAMP.length - 1), k = Math.min(Math.floor(t), RAMP.length - 2), f = t - k;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(RAMP[k][c] * (1 - f) + RAMP[k + 1][c] * f);
  }
  return lut;
})();

/* Distinct colours for instances: the class colour rotated in hue per instance. */
function instanceColor(base, k) {
  let [r, g, b] = base.map((v) => v / 255);
  const mx = Math.max(r, g, b), mn = Math.min(r, g, b), l = (mx + mn) / 2;
  let hue = 0, s = 0;
  if (mx !== mn) {
    const d = mx - mn;
    s = l > 0.5 ? d / (2 - mx - mn) : d / (mx + mn);
    hue = mx === r ? (g - b) / d + (g < b ? 6 : 0) : mx === g ? (b - r) / d + 2 : (r - g) / d + 4;
    hue /= 6;
  }
  hue = (hue + k * 0.618034) % 1;
  s = Math.max(s, 0.65);
  const L = 0.45 + 0.1 * ((k % 3) - 1);
  const q = L < 0.5 ? L * (1 + s) : L + s - L * s, p = 2 * L - q;
  const f = (t) => {
    t = (t + 1) % 1;
    return t < 1 / 6 ? p + (q - p) * 6 * t : t < 1 / 2 ? q : t < 2 / 3 ? p + (q - p) * (2 / 3 - t) * 6 : p;
  };
  return [f(hue + 1 / 3), f(hue), f(hue - 1 / 3)].map((v) => Math.round(v * 255));
}

/* ------------------------------------------------------------------ a result pane */
class Pane {
  constructor(index, mode) {
    this.index = index;
    this.el = $('#pane-tpl').content.firstElementChild.cloneNode(true);
    this.el.id = 'pane-' + 'ab'[index];
    this.el.dataset.state = 'empty';
    this.mode = mode;
    this.seq = 0;
    this.result = null;
    this.maps = null;
    this.overlays = {};
    const sel = $('.mode', this.el);
    for (const m of state.modes) sel.append(el('option', { value: m, text: modeName(m) + (MODE_INFO[m] ? ` (${m})` : '') }));
    sel.value = mode;
    sel.setAttribute('aria-label', `Calibration mode, ${index ? 'right' : 'left'} pane`);
    sel.addEventListener('change', () => { this.mode = sel.value; this.describeMode(); this.run(); });
    const mIn = $('.m', this.el), mOut = $('.m-out', this.el);
    mIn.setAttribute('aria-label', 'Calibration strength m');
    mIn.addEventListener('input', () => { mOut.textContent = Number(mIn.value).toFixed(2); });
    mIn.addEventListener('change', () => this.run());
    $('.pane-tag', this.el).textContent = index ? 'B' : 'A';
    $('.retry', this.el).addEventListener('click', () => this.run());
    this.canvas = $('canvas', this.el);
    this.canvas.addEventListener('mousemove', (e) => this.hover(e));
    this.canvas.addEventListener('mouseleave', () => { $('#tooltip').hidden = true; this.setHighlight(0); });
    this.describeMode();
  }

  describeMode() {
    const info = MODE_INFO[this.mode];
    $('.mode-desc', this.el).textContent = info ? info[1] : `Calibration mode “${this.mode}”.`;
    $('.m-wrap', this.el).hidden = this.mode !== 'manual';
    this.el.dataset.mode = this.mode;
  }

  setBusy(busy) {
    this.el.setAttribute('aria-busy', String(busy));
    $('.busy', this.el).hidden = !busy;
    $('.busy-text', this.el).textContent = `Segmenting with ${modeName(this.mode)}…`;
  }

  showError(title, detail) {
    this.drawBase(state.input && state.input.bitmap);
    const box = $('.error', this.el);
    $('.error-title', box).textContent = title;
    $('.error-detail', box).textContent = detail;
    box.hidden = false;
    this.el.dataset.state = 'error';
  }

  async run() {
    const input = state.input;
    if (!input) return;
    const seq = ++this.seq;
    if (this.abort) this.abort.abort();
    this.abort = new AbortController();
    $('.placeholder', this.el).hidden = true;
    $('.error', this.el).hidden = true;
    this.el.dataset.state = 'loading';
    this.setBusy(true);
    if (this.shownInput !== input) {
      this.clear();
      this.shownInput = input;
      this.drawBase(input.bitmap);
    }

    const lim = state.limits.max_upload_bytes;
    if (lim && input.blob.size > lim) {
      this.setBusy(false);
      this.clear();
      return this.showError(...plainError(413, 'too_large'));
    }
    const form = new FormData();
    form.append('image', input.blob, input.filename || 'image');
    form.append('calibration', this.mode);
    if (this.mode === 'manual') form.append('m', $('.m', this.el).value);
    form.append('outputs', OUTPUTS);
    if (state.size) form.append('size', String(state.size));
    if (input.label && input.label.png) {
      form.append('label', input.label.png, 'label.png');
      form.append('label_segments', input.label.segments);
    }
    const t0 = performance.now();
    let res, body;
    try {
      res = await fetch('v1/segment', { method: 'POST', body: form, signal: this.abort.signal });
      body = await res.json().catch(() => null);
    } catch (e) {
      if (e.name === 'AbortError' || seq !== this.seq) return;
      this.setBusy(false);
      this.clear();
      return this.showError(...plainError(0, 'network'));
    }
    if (seq !== this.seq) return;
    const roundTrip = performance.now() - t0;
    if (!res.ok || !body || body.error) {
      this.setBusy(false);
      this.clear();
      const err = (body && body.error) || {};
      return this.showError(...plainError(res.status, err.code, err.message, res.headers.get('Retry-After')));
    }
    try {
      await this.show(body, input, roundTrip);
    } catch (e) {
      this.clear();
      this.showError('The result could not be displayed.', String(e.message || e));
    }
    if (seq === this.seq) this.setBusy(false);
    updateVerdict();
  }

  clear() {
    this.result = null;
    this.maps = null;
    this.overlays = {};
    this.highlight = 0;
    $('.stats', this.el).replaceChildren();
    $('.legend', this.el).replaceChildren();
    $('.colorbar', this.el).hidden = true;
    for (const svg of this.el.querySelectorAll('.chart svg')) svg.replaceChildren();
    for (const cap of this.el.querySelectorAll('.chart figcaption')) cap.textContent = cap.dataset.title || cap.textContent.split(' · ')[0];
    this.el.classList.remove('has-result');
    updateVerdict();
  }

  async show(r, input, roundTrip) {
    const w = r.image ? r.image.width : input.bitmap.width, h = r.image ? r.image.height : input.bitmap.height;
    const masks = r.masks || {};
    const dec = async (k) => (masks[k] ? decodePng(base64Bytes(masks[k])) : null);
    const [pan, sem, conf] = await Promise.all([dec('panoptic_png'), dec('semantic_png'), dec('confidence_png')]);
    const n = w * h;
    const ids = new Int32Array(n);
    if (pan) for (let i = 0, j = 0; i < n; i++, j += pan.ch) ids[i] = pan.data[j] | (pan.data[j + 1] << 8) | (pan.data[j + 2] << 16);
    const segs = new Map((r.segments || []).map((s) => [s.id, s]));
    let cls;
    if (sem && sem.ch === 1) cls = sem.data;
    else {
      cls = new Uint8Array(n).fill(255);
      for (let i = 0; i < n; i++) { const s = segs.get(ids[i]); if (s) cls[i] = s.category_id; }
    }
    this.result = r;
    this.roundTrip = roundTrip;
    this.maps = { w, h, ids, cls, conf: conf ? conf.data : null, confCh: conf ? conf.ch : 1, segs };
    this.overlays = {};
    this.highlight = 0;
    this.bitmap = input.bitmap;
    this.el.dataset.state = 'done';
    this.el.dataset.input = input.filename || '';
    this.el.dataset.size = r.network_input ? String(Math.min(r.network_input.width, r.network_input.height)) : '';
    this.el.classList.add('has-result');
    this.render();
    this.renderStats();
    this.renderLegend();
    this.renderCharts();
  }

  /* The input image alone (or an empty stage when it cannot be decoded). */
  drawBase(bitmap) {
    const c = this.canvas;
    if (!bitmap) { c.getContext('2d').clearRect(0, 0, c.width, c.height); return; }
    this.fitStage(bitmap.width, bitmap.height);
    c.width = bitmap.width; c.height = bitmap.height;
    c.getContext('2d').drawImage(bitmap, 0, 0);
  }

  fitStage(w, h) {
    $('.stage', this.el).style.aspectRatio = `${w} / ${h}`;
  }

  /* The overlay of the current view as a canvas (cached per view). */
  overlay(view) {
    if (this.overlays[view]) return this.overlays[view];
    const { w, h, ids, cls, conf, confCh, segs } = this.maps;
    const c = new OffscreenCanvas(w, h), ctx = c.getContext('2d'), img = ctx.createImageData(w, h), px = img.data;
    const colors = state.classes.map((k) => k.color || [200, 200, 200]);
    if (view === 'semantic') {
      for (let i = 0; i < w * h; i++) {
        const col = colors[cls[i]];
        if (!col) continue;
        px[4 * i] = col[0]; px[4 * i + 1] = col[1]; px[4 * i + 2] = col[2]; px[4 * i + 3] = 255;
      }
    } else if (view === 'instance') {
      const instCol = new Map();
      const perClass = new Map();
      for (const s of segs.values()) {
        if (!s.isthing) continue;
        const k = perClass.get(s.category_id) || 0;
        perClass.set(s.category_id, k + 1);
        instCol.set(s.id, instanceColor(colors[s.category_id] || [128, 128, 128], k));
      }
      for (let i = 0; i < w * h; i++) {
        const col = instCol.get(ids[i]);
        if (col) { px[4 * i] = col[0]; px[4 * i + 1] = col[1]; px[4 * i + 2] = col[2]; px[4 * i + 3] = 255; }
        else { px[4 * i] = px[4 * i + 1] = px[4 * i + 2] = 20; px[4 * i + 3] = 110; } // stuff: dimmed
      }
    } else if (view === 'confidence' && conf) {
      for (let i = 0; i < w * h; i++) {
        const v = conf[i * confCh];
        px[4 * i] = RAMP_LUT[v * 3]; px[4 * i + 1] = RAMP_LUT[v * 3 + 1]; px[4 * i + 2] = RAMP_LUT[v * 3 + 2]; px[4 * i + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    return (this.overlays[view] = c);
  }

  /* Instance outlines: pixels where the segment id changes and a thing is on either side. */
  outlineLayer() {
    if (this.overlays.outline) return this.overlays.outline;
    const { w, h, ids, segs } = this.maps;
    const thing = (id) => { const s = segs.get(id); return s && s.isthing; };
    const c = new OffscreenCanvas(w, h), ctx = c.getContext('2d'), img = ctx.createImageData(w, h), px = img.data;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const i = y * w + x, a = ids[i];
      const r = x + 1 < w ? ids[i + 1] : a, d = y + 1 < h ? ids[i + w] : a;
      if ((r !== a && (thing(a) || thing(r))) || (d !== a && (thing(a) || thing(d)))) {
        px[4 * i] = px[4 * i + 1] = px[4 * i + 2] = 255; px[4 * i + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    return (this.overlays.outline = c);
  }

  render() {
    if (!this.maps) return;
    const { w, h } = this.maps, c = this.canvas;
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    this.fitStage(w, h);
    const ctx = c.getContext('2d');
    ctx.globalAlpha = 1;
    ctx.clearRect(0, 0, w, h);
    if (this.bitmap) ctx.drawImage(this.bitmap, 0, 0, w, h);
    ctx.globalAlpha = state.opacity;
    ctx.drawImage(this.overlay(state.view), 0, 0);
    ctx.globalAlpha = 1;
    if (state.outlines && state.view !== 'confidence') ctx.drawImage(this.outlineLayer(), 0, 0);
    if (this.highlight) this.drawHighlight(ctx);
    $('.colorbar', this.el).hidden = state.view !== 'confidence';
    const r = this.result, nThings = (r.segments || []).filter((s) => s.isthing).length;
    c.setAttribute('aria-label', `${modeName(this.mode)} result: ${(r.segments || []).length} segments, ${nThings} of them object instances`);
  }

  drawHighlight(ctx) {
    const s = this.maps.segs.get(this.highlight);
    if (!s || !s.bbox) return;
    const [x, y, bw, bh] = s.bbox, lw = Math.max(1.5, this.maps.w / 400);
    ctx.lineWidth = lw;
    ctx.strokeStyle = 'rgba(0,0,0,0.8)';
    ctx.strokeRect(x - lw, y - lw, bw + 2 * lw, bh + 2 * lw);
    ctx.strokeStyle = '#ffd166';
    ctx.strokeRect(x, y, bw, bh);
  }

  setHighlight(id) {
    if (this.highlight === id) return;
    this.highlight = id;
    this.render();
  }

  hover(e) {
    const tip = $('#tooltip');
    if (!this.maps) { tip.hidden = true; return; }
    const rect = this.canvas.getBoundingClientRect();
    const scale = Math.min(rect.width / this.maps.w, rect.height / this.maps.h);
    const ox = (rect.width - this.maps.w * scale) / 2, oy = (rect.height - this.maps.h * scale) / 2;
    const x = Math.floor((e.clientX - rect.left - ox) / scale);
    const y = Math.floor((e.clientY - rect.top - oy) / scale);
    if (x < 0 || y < 0 || x >= this.maps.w || y >= this.maps.h) { tip.hidden = true; return; }
    const i = y * this.maps.w + x, id = this.maps.ids[i], s = this.maps.segs.get(id);
    const cid = s ? s.category_id : this.maps.cls[i], klass = state.classes[cid];
    const name = s ? s.category : klass ? klass.name : 'unlabelled';
    const col = klass && klass.color ? `rgb(${klass.color.join(',')})` : '#999';
    const rows = [];
    if (s && s.isthing) rows.push(['instance', `#${s.id}`], ['score', fmt(s.score, 2)]);
    else if (s) rows.push(['kind', 'background (stuff)']);
    else rows.push(['segment', 'none (too small or unsure)']);
    if (s) rows.push(['area', `${s.area.toLocaleString('en')} px (${pct(s.area / (this.maps.w * this.maps.h))})`]);
    if (this.maps.conf) rows.push(['confidence here', fmt(this.maps.conf[i * this.maps.confCh] / 255, 2)]);
    tip.replaceChildren(
      el('p', { class: 'tip-title' }, el('i', { class: 'sw', style: `background:${col}` }), name),
      el('dl', {}, ...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })])));
    tip.hidden = false;
    const pad = 14, tw = tip.offsetWidth, th = tip.offsetHeight;
    let left = e.clientX + pad, top = e.clientY + pad;
    if (left + tw > window.innerWidth - 4) left = e.clientX - tw - pad;
    if (top + th > window.innerHeight - 4) top = e.clientY - th - pad;
    tip.style.left = Math.max(4, left) + 'px';
    tip.style.top = Math.max(4, top) + 'px';
    this.setHighlight(s && s.isthing ? s.id : 0);
  }

  renderStats() {
    const r = this.result, m = r.metrics, c = r.confidence || {};
    const segs = r.segments || [];
    const items = [];
    if (m) {
      items.push(['ECE', fmt(m.ece, 3), 'ece', 'Expected Calibration Error against the ground truth: lower is better']);
      items.push(['mIoU', pct(m.miou), 'miou', 'mean intersection over union of the classes: higher is better']);
      if (m.pq) items.push(['PQ', pct(m.pq.pq), 'pq', 'panoptic quality: higher is better']);
    }
    items.push(['mean confidence', fmt(c.mean_max_prob, 2), 'conf', 'average of the top class probability over all pixels']);
    if (Number.isFinite(r.drift_score)) items.push(['drift score', r.drift_score.toPrecision(3), 'drift',
      'how far this image\'s BatchNorm statistics are from the training data\'s (0 = alike); its scale depends on the mode']);
    if (r.network_input) items.push(['network input', `${r.network_input.width}×${r.network_input.height}`, 'net',
      'the size the network ran at (set above); the masks are at the image\'s own size']);
    items.push(['segments', `${segs.length} (${segs.filter((s) => s.isthing).length} objects)`, 'segments', 'panoptic segments found']);
    $('.stats', this.el).replaceChildren(...items.map(([k, v, key, title]) =>
      el('div', { class: 'stat stat-' + key, title }, el('dt', { text: k }), el('dd', { text: v, 'data-key': key }))));
  }

  renderLegend() {
    const { cls, segs, w, h } = this.maps;
    const area = new Map(), inst = new Map();
    for (let i = 0; i < w * h; i++) area.set(cls[i], (area.get(cls[i]) || 0) + 1);
    for (const s of segs.values()) if (s.isthing) inst.set(s.category_id, (inst.get(s.category_id) || 0) + 1);
    const rows = [...area.entries()].filter(([id]) => state.classes[id]).sort((a, b) => b[1] - a[1]);
    $('.legend', this.el).replaceChildren(...rows.map(([id, a]) => {
      const k = state.classes[id];
      const extra = inst.get(id) ? ` · ${inst.get(id)}×` : '';
      return el('li', { 'data-class': k.name, title: `${k.name}: ${pct(a / (w * h))} of the pixels${inst.get(id) ? `, ${inst.get(id)} instance(s)` : ''}` },
        el('i', { class: 'sw', style: `background:rgb(${(k.color || [200, 200, 200]).join(',')})` }),
        el('span', { class: 'name', text: k.name }), el('span', { class: 'share', text: pct(a / (w * h), 0) + extra }));
    }));
  }

  renderCharts() {
    const r = this.result;
    drawReliability($('.chart-rel svg', this.el), $('.chart-rel figcaption', this.el), r.metrics);
    drawHistogram($('.chart-hist svg', this.el), $('.chart-hist figcaption', this.el), r.confidence);
    drawTimings($('.chart-time svg', this.el), $('.chart-time figcaption', this.el), r, this.roundTrip);
  }
}

/* ------------------------------------------------------------------ charts (SVG) */
const CH = { l: 40, r: 8, t: 38, b: 30, w: 260, h: 220 };
function axes(svg, xlabel, ylabel, yticks) {
  svg.setAttribute('viewBox', `0 0 ${CH.w} ${CH.h}`);
  const pw = CH.w - CH.l - CH.r, ph = CH.h - CH.t - CH.b;
  const g = svgEl('g', { class: 'axes' });
  for (const [v, lab] of yticks) {
    const y = CH.t + ph * (1 - v);
    g.append(svgEl('line', { x1: CH.l, x2: CH.l + pw, y1: y, y2: y, class: 'grid' }));
    g.append(svgEl('text', { x: CH.l - 4, y: y + 3, 'text-anchor': 'end' }, lab));
  }
  for (const v of [0, 0.5, 1]) g.append(svgEl('text', { x: CH.l + pw * v, y: CH.t + ph + 12, 'text-anchor': 'middle' }, String(v)));
  g.append(svgEl('line', { x1: CH.l, x2: CH.l + pw, y1: CH.t + ph, y2: CH.t + ph, class: 'axis' }));
  g.append(svgEl('line', { x1: CH.l, x2: CH.l, y1: CH.t, y2: CH.t + ph, class: 'axis' }));
  g.append(svgEl('text', { x: CH.l + pw / 2, y: CH.h - 3, 'text-anchor': 'middle', class: 'label' }, xlabel));
  g.append(svgEl('text', { x: 9, y: CH.t + ph / 2, 'text-anchor': 'middle', class: 'label', transform: `rotate(-90 9 ${CH.t + ph / 2})` }, ylabel));
  svg.append(g);
  return { pw, ph, x: (v) => CH.l + pw * v, y: (v) => CH.t + ph * (1 - v) };
}

function noData(svg, text) {
  svg.replaceChildren();
  if (!svg.closest('.chart-time')) svg.setAttribute('viewBox', `0 0 ${CH.w} ${CH.h}`);
  const words = text.split(' '), lines = [];
  let cur = '';
  for (const wd of words) { if ((cur + ' ' + wd).length > 34) { lines.push(cur); cur = wd; } else cur = cur ? cur + ' ' + wd : wd; }
  lines.push(cur);
  lines.forEach((l, i) => svg.append(svgEl('text', { x: CH.w / 2, y: CH.h / 2 - (lines.length - 1) * 8 + i * 16, 'text-anchor': 'middle', class: 'nodata' }, l)));
}

function drawReliability(svg, cap, m) {
  svg.replaceChildren();
  if (!m || !Array.isArray(m.reliability)) {
    cap.textContent = 'Reliability';
    svg.setAttribute('aria-label', 'No reliability diagram: the image has no ground truth');
    return noData(svg, 'Needs a ground truth: pick a sample to see accuracy against confidence and the ECE.');
  }
  cap.replaceChildren('Reliability · ', el('strong', { text: `ECE ${fmt(m.ece, 3)}` }));
  const a = axes(svg, 'confidence', 'accuracy', [[0, '0'], [0.5, '.5'], [1, '1']]);
  const total = m.reliability.reduce((s, b) => s + (b.count || 0), 0) || 1;
  for (const b of m.reliability) {
    if (!b.count || b.accuracy == null) continue;
    const x0 = a.x(b.lo), x1 = a.x(b.hi), bw = Math.max(1, x1 - x0 - 1);
    const acc = b.accuracy, conf = b.mean_confidence == null ? acc : b.mean_confidence;
    const g = svgEl('g');
    g.append(svgEl('title', {}, `confidence ${fmt(b.lo, 2)}–${fmt(b.hi, 2)}: right ${pct(acc)} of the time at a mean confidence of ${pct(conf)} (${pct(b.count / total)} of the pixels)`));
    g.append(svgEl('rect', { x: x0 + 0.5, y: a.y(acc), width: bw, height: a.y(0) - a.y(acc), class: 'bar-acc' }));
    if (conf > acc) g.append(svgEl('rect', { x: x0 + 0.5, y: a.y(conf), width: bw, height: a.y(acc) - a.y(conf), class: 'bar-gap over' }));
    else if (conf < acc) g.append(svgEl('rect', { x: x0 + 0.5, y: a.y(acc), width: bw, height: a.y(conf) - a.y(acc), class: 'bar-gap under' }));
    svg.append(g);
  }
  svg.append(svgEl('line', { x1: a.x(0), y1: a.y(0), x2: a.x(1), y2: a.y(1), class: 'diag' }));
  const key = svgEl('g', { class: 'chart-key' });
  const items = [['rect', 'bar-acc', 'accuracy', 4, 4], ['line', 'diag', 'ideal (confidence = accuracy)', 92, 4],
    ['rect', 'bar-gap over', 'overconfident gap', 4, 19], ['rect', 'bar-gap under', 'underconfident gap', 124, 19]];
  for (const [kind, cls, label, kx, ky] of items) {
    if (kind === 'rect') key.append(svgEl('rect', { x: kx, y: ky, width: 9, height: 9, class: cls }));
    else key.append(svgEl('line', { x1: kx - 1, x2: kx + 11, y1: ky + 4.5, y2: ky + 4.5, class: cls }));
    key.append(svgEl('text', { x: kx + 14, y: ky + 8 }, label));
  }
  svg.append(key);
  svg.setAttribute('aria-label', `Reliability diagram; expected calibration error ${fmt(m.ece, 3)}`);
}

function drawHistogram(svg, cap, c) {
  svg.replaceChildren();
  if (!c || !Array.isArray(c.histogram)) { cap.textContent = 'Confidence histogram'; return noData(svg, 'No confidence statistics in the response.'); }
  const hist = c.histogram, n = hist.length, total = hist.reduce((s, v) => s + v, 0) || 1;
  const maxf = Math.max(...hist) / total || 1, top = Math.min(1, Math.ceil(maxf * 10) / 10);
  cap.replaceChildren('Confidence histogram · ', el('strong', { text: `mean ${fmt(c.mean_max_prob, 2)}` }));
  const a = axes(svg, 'top-class probability', 'pixels', [[0, '0'], [0.5, pct(top / 2, 0)], [1, pct(top, 0)]]);
  hist.forEach((v, b) => {
    if (!v) return;
    const f = v / total / top, x0 = a.x(b / n), x1 = a.x((b + 1) / n);
    const r = svgEl('rect', { x: x0 + 0.5, y: a.y(f), width: Math.max(1, x1 - x0 - 1), height: a.y(0) - a.y(f), class: 'bar-hist' });
    r.append(svgEl('title', {}, `${fmt(b / n, 2)}–${fmt((b + 1) / n, 2)}: ${pct(v / total)} of pixels`));
    svg.append(r);
  });
  if (c.mean_max_prob != null) {
    const x = a.x(c.mean_max_prob);
    svg.append(svgEl('line', { x1: x, x2: x, y1: a.y(0), y2: a.y(1), class: 'mean' }));
  }
  svg.setAttribute('aria-label', `Histogram of per-pixel confidence; mean ${fmt(c.mean_max_prob, 2)}`);
}

function drawTimings(svg, cap, r, roundTrip) {
  svg.replaceChildren();
  const t = r.timings || {}, tm = r.timings_ms;
  const rows = [];
  if (t.queue_s != null) rows.push(['queue', t.queue_s * 1000]);
  if (tm) {
    for (const k of ['decode', 'preprocess', 'forward', 'postprocess', 'metrics', 'encode']) if (tm[k] != null) rows.push([k, tm[k]]);
  } else {
    for (const k of ['decode', 'inference', 'postprocess']) if (t[k + '_s'] != null) rows.push([k, t[k + '_s'] * 1000]);
  }
  const total = t.total_s != null ? t.total_s * 1000 : null;
  cap.replaceChildren('Time per stage', total != null ? ' · ' : '', total != null ? el('strong', { text: `${ms(total)} on the server` }) : '',
    roundTrip != null ? ` · ${ms(roundTrip)} round trip from this browser` : '');
  const W = Math.max(240, Math.round(svg.parentElement.clientWidth - 12) || 260);
  const rowH = 15, H = rows.length * rowH + 4;
  svg.setAttribute('viewBox', `0 0 ${W} ${Math.max(H, 40)}`);
  if (!rows.length) return noData(svg, 'No timings in the response.');
  const max = Math.max(...rows.map((x) => x[1]), 1e-3);
  const left = 74, right = 56;
  rows.forEach(([name, v], i) => {
    const y = 2 + i * rowH, bw = Math.max(1, ((W - left - right) * v) / max);
    const cls = name === 'forward' || name === 'inference' ? 'bar-fwd' : 'bar-time';
    svg.append(svgEl('text', { x: left - 6, y: y + rowH / 2 + 3.5, 'text-anchor': 'end', class: 'tlabel' }, name));
    const bar = svgEl('rect', { x: left, y: y + 2, width: bw, height: rowH - 4, rx: 2, class: cls });
    bar.append(svgEl('title', {}, `${name}: ${ms(v)}`));
    svg.append(bar);
    svg.append(svgEl('text', { x: left + bw + 4, y: y + rowH / 2 + 3.5, class: 'tval' }, ms(v)));
  });
  svg.setAttribute('aria-label', 'Time per stage: ' + rows.map(([k, v]) => `${k} ${ms(v)}`).join(', ') + (roundTrip != null ? `; round trip ${ms(roundTrip)}` : ''));
}

/* ------------------------------------------------------------------ verdict */
function updateVerdict() {
  const v = $('#verdict');
  const [a, b] = state.panes;
  if (!a || !b || !a.result || !b.result || a.mode === b.mode) { v.hidden = true; return; }
  const ma = a.result.metrics, mb = b.result.metrics;
  const parts = [];
  const where = state.input && state.input.kind === 'sample' ? state.input.title : 'this image';
  if (ma && mb && ma.ece != null && mb.ece != null) {
    const better = mb.ece < ma.ece;
    const rel = ma.ece > 0 ? Math.abs(mb.ece - ma.ece) / ma.ece : 0;
    parts.push(el('span', {}, `${where}: ${modeName(b.mode)} `,
      el('strong', { class: better ? 'good' : 'bad', text: `${better ? 'lowers' : 'raises'} the calibration error by ${pct(rel, 0)}` }),
      ` (ECE ${fmt(ma.ece, 3)} → ${fmt(mb.ece, 3)})`));
    if (ma.miou != null && mb.miou != null) parts.push(el('span', {}, `; mIoU ${pct(ma.miou)} → ${pct(mb.miou)}.`));
  } else {
    const ca = a.result.confidence || {}, cb = b.result.confidence || {};
    parts.push(el('span', {}, `${where}: mean confidence ${fmt(ca.mean_max_prob, 2)} with ${modeName(a.mode)}, ${fmt(cb.mean_max_prob, 2)} with ${modeName(b.mode)}. `,
      'Without a ground truth nobody can say which one to trust: pick a sample to see ECE.'));
  }
  v.replaceChildren(...parts);
  v.hidden = false;
}

/* ------------------------------------------------------------------ set-up */
function buildGallery() {
  const ul = $('#gallery');
  ul.replaceChildren(...state.samples.map((s) => {
    const b = el('button', { type: 'button', class: 'sample', 'aria-pressed': 'false', 'data-domain': s.domain || '', title: `${s.title}${s.label ? ' (with ground truth)' : ''}` },
      el('img', { src: state.samplesBase + s.file, alt: '', width: '128', height: '64', loading: 'eager' }),
      el('span', { class: 'sample-title', text: s.title || s.file }),
      s.label ? el('span', { class: 'badge', text: 'ground truth' }) : null);
    b.addEventListener('click', () => chooseSample(s, b));
    return el('li', {}, b);
  }));
}

function wireInputs() {
  const file = $('#file'), drop = $('#drop');
  file.addEventListener('change', () => { chooseFile(file.files[0]); file.value = ''; });
  const over = (e) => { e.preventDefault(); drop.classList.add('over'); };
  for (const t of [drop, document.body]) {
    t.addEventListener('dragover', over);
    t.addEventListener('dragenter', over);
  }
  document.body.addEventListener('dragleave', (e) => { if (!e.relatedTarget) drop.classList.remove('over'); });
  document.body.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (f) chooseFile(f);
  });
  for (const r of document.querySelectorAll('input[name=view]'))
    r.addEventListener('change', () => { state.view = r.value; for (const p of state.panes) p.render(); });
  const op = $('#opacity'), opOut = $('#opacity-out');
  op.addEventListener('input', () => {
    state.opacity = Number(op.value);
    opOut.textContent = pct(state.opacity, 0);
    for (const p of state.panes) p.render();
  });
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { for (const p of state.panes) if (p.result) p.renderCharts(); }, 150);
  });
  $('#outlines').addEventListener('change', (e) => { state.outlines = e.target.checked; for (const p of state.panes) p.render(); });
  $('#size').addEventListener('change', (e) => { state.size = Number(e.target.value); if (state.input) for (const p of state.panes) p.run(); });
}

/* The network input sizes offered: the model's own (default) and a few short sides within the
 * server's limits (min_request_size .. max_request_size). */
function fillSizes(m) {
  const sel = $('#size');
  const own = m.network_input && m.network_input.min_size_test;
  const lo = state.limits.min_request_size || 0, hi = state.limits.max_request_size || 0;
  if (own) sel.options[0].textContent = `model default (${own} px)`;
  for (const v of [128, 192, 256, 384, 512, 768, 1024])
    if (v >= lo && v <= hi && v !== own) sel.append(el('option', { value: String(v), text: `${v} px` }));
  sel.disabled = sel.options.length < 2;
}

async function main() {
  wireInputs();
  const info = $('#model-info');
  let models;
  try {
    const res = await fetch('v1/models');
    models = await res.json();
    if (!res.ok) throw new Error((models.error && models.error.message) || res.status);
  } catch (e) {
    info.textContent = 'The server is not answering: is instcald running?';
    info.classList.add('down');
    return;
  }
  const m = (models.models || [])[0];
  if (!m) { info.textContent = 'The server has no model loaded.'; info.classList.add('down'); return; }
  state.model = m;
  state.classes = [];
  for (const c of m.classes || []) state.classes[c.id] = c;
  state.modes = m.calibration_modes && m.calibration_modes.length ? m.calibration_modes : ['none'];
  state.limits = m.limits || {};
  info.replaceChildren('Model ', el('strong', { text: m.name }), ` · ${(m.classes || []).length} classes · ${state.modes.length} calibration modes`);
  fillSizes(m);
  if (state.limits.max_upload_bytes)
    $('#limits-hint').textContent = `Up to ${(state.limits.max_upload_bytes / 1048576).toFixed(0)} MB · no ground truth, so no ECE`;

  const modes = [DEFAULT_MODES[0], DEFAULT_MODES[1]].map((d, i) =>
    state.modes.includes(d) ? d : i === 1 ? (state.modes.find((x) => x.startsWith('instcal')) || m.default_calibration || state.modes[0]) : state.modes[0]);
  const compare = $('#compare');
  state.panes = modes.map((md, i) => new Pane(i, md));
  compare.replaceChildren(...state.panes.map((p) => p.el));

  try {
    const res = await fetch(state.samplesBase + 'samples.json');
    if (res.ok) state.samples = (await res.json()).samples || [];
  } catch (e) { state.samples = []; }
  buildGallery();
  const want = new URLSearchParams(location.hash.slice(1)).get('sample') || FIRST_SAMPLE;
  const idx = Math.max(0, state.samples.findIndex((s) => s.domain === want || s.file === want));
  const btn = document.querySelectorAll('#gallery button')[idx];
  if (btn) btn.click();
}

main();
