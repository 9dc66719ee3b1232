#!/usr/bin/env node
// ONNX Runtime side of the model benchmark (docs/benchmarks.md): loads an .onnx written by
// bench/export_onnx.py, runs it `--reps` times on the same input after `--warmup` untimed runs
// (default 2) and prints the median wall time of session.run(). The session is created once and the input
// tensor once, so the figure is the inference alone, as `instcal bench model` times
// ic_pdl_forward() alone.
//
//   node bench/ort_bench.js --model M.onnx --input M.input.f32 --size HxW [--reps 5]
//        [--warmup 2] [--threads 2] [--compare OUT.f32 ...]
//
// Why two warm-up runs: ORT's second run is still cold. Measured on R-52-DSConv at 512x1024,
// 2 threads, with one warm-up run: the first timed run took 1191 and 1206 ms, the next five
// 733 to 753 ms; with 2 reps the median was half cold. The JSON keeps the warm-up times
// (warmup_ms) so a run shows whether two were enough. The C side (`instcal bench model`) needs
// one: its first timed run is as fast as its later ones.
//
// --compare takes raw float32 files holding sem|center|offset concatenated (the C engine's
// `--dump` or export_onnx.py's OUT.torch.f32) and prints the max relative error of each output
// (max |a - b| / max |b|), so that a timing comparison is known to be of the same computation.
// The last line is one JSON object for bench/run_model_bench.sh (times, and the peak RSS).
'use strict';

const fs = require('fs');
const ort = require('onnxruntime-node');

function parseArgs(argv) {
    const a = { reps: 5, warmup: 2, threads: 2, compare: [] };
    for (let i = 2; i < argv.length; i++) {
        const k = argv[i], v = argv[i + 1];
        if (k === '--model') a.model = v, i++;
        else if (k === '--input') a.input = v, i++;
        else if (k === '--size') a.size = v.split('x').map(Number), i++;
        else if (k === '--reps') a.reps = Number(v), i++;
        else if (k === '--warmup') a.warmup = Number(v), i++;
        else if (k === '--threads') a.threads = Number(v), i++;
        else if (k === '--compare') a.compare.push(v), i++;
        else throw new Error('ort_bench: unknown argument ' + k);
    }
    if (!a.model || !a.input || !a.size) throw new Error('ort_bench: --model, --input and --size are required');
    if (!(Number.isInteger(a.reps) && a.reps >= 1)) throw new Error('ort_bench: --reps must be a whole number >= 1');
    if (!(Number.isInteger(a.warmup) && a.warmup >= 1)) throw new Error('ort_bench: --warmup must be a whole number >= 1');
    return a;
}

function readF32(path) {
    const b = fs.readFileSync(path);
    // copy into an aligned buffer: a Buffer's byteOffset need not be a multiple of 4
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

function median(xs) {
    const s = [...xs].sort((p, q) => p - q);
    const n = s.length;
    return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

// max |a - b| / max |b| over one output; b is the reference
function relErr(a, b, off) {
    let dmax = 0, bmax = 0;
    for (let i = 0; i < a.length; i++) {
        const d = Math.abs(a[i] - b[off + i]);
        if (!(d <= dmax)) dmax = d; // NaN propagates as a failure
        const m = Math.abs(b[off + i]);
        if (m > bmax) bmax = m;
    }
    return dmax / bmax;
}

async function main() {
    const a = parseArgs(process.argv);
    const [h, w] = a.size;
    const x = readF32(a.input);
    if (x.length !== 3 * h * w) throw new Error(`ort_bench: ${a.input} has ${x.length} floats, expected 3x${h}x${w}`);
    const opts = {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        intraOpNumThreads: a.threads,
        interOpNumThreads: 1,
    };
    const t0 = process.hrtime.bigint();
    const sess = await ort.InferenceSession.create(a.model, opts);
    const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const feeds = { x: new ort.Tensor('float32', x, [1, 3, h, w]) };

    // warm-up: first-run allocations and kernel selection, and the still cold second run
    let out;
    const warm = [];
    for (let r = 0; r < a.warmup; r++) {
        const s = process.hrtime.bigint();
        out = await sess.run(feeds);
        warm.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    const times = [];
    for (let r = 0; r < a.reps; r++) {
        const s = process.hrtime.bigint();
        out = await sess.run(feeds);
        times.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    const res = {
        runtime: 'ort', version: ort.env.versions.node, threads: a.threads, reps: a.reps,
        load_ms: loadMs, median_ms: median(times), times_ms: times, warmup_ms: warm, max_rel_err: {},
        // the process's high-water mark (KiB on Linux), as `instcal bench model` reports its own;
        // it includes node itself (~40 MiB)
        peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    };
    for (const path of a.compare) {
        const ref = readF32(path);
        let off = 0;
        const errs = {};
        for (const k of ['sem', 'center', 'offset']) {
            const d = out[k].data;
            if (off + d.length > ref.length) throw new Error(`ort_bench: ${path} is too short`);
            errs[k] = relErr(d, ref, off);
            off += d.length;
        }
        if (off !== ref.length) throw new Error(`ort_bench: ${path} has ${ref.length} floats, expected ${off}`);
        res.max_rel_err[path] = errs;
        console.log(`ort vs ${path}: max rel err sem ${errs.sem.toExponential(2)} center ${errs.center.toExponential(2)} offset ${errs.offset.toExponential(2)}`);
    }
    console.log(`ort ${res.version} threads ${a.threads}: median ${res.median_ms.toFixed(1)} ms over ${a.reps} reps (load ${loadMs.toFixed(0)} ms)`);
    console.log(JSON.stringify(res));
}

main().catch((e) => { console.error(e.message || e); process.exit(1); });
