#!/usr/bin/env node
// Where ONNX Runtime's forward spends its time, by kind of node: runs an .onnx written by
// bench/export_onnx.py with ORT's profiler on (`--warmup` untimed runs, then one profiled run)
// and prints the milliseconds of that run per operator, convolutions split by kernel
// (1x1, 3x3, 5x5dw, ...) and stride, and the slowest nodes. docs/benchmarks.md sets these
// beside the C engine's per-layer times to find the layers where ORT is ahead.
//
//   node bench/ort_profile.js --model M.onnx --input M.input.f32 --size HxW [--threads 1]
//        [--warmup 3] [--top 12]
//
// The profile file ORT writes goes to a temporary directory and is removed.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const ort = require('onnxruntime-node');

function parseArgs(argv) {
    const a = { threads: 1, warmup: 3, top: 12 };
    for (let i = 2; i < argv.length; i++) {
        const k = argv[i], v = argv[i + 1];
        if (k === '--model') a.model = v, i++;
        else if (k === '--input') a.input = v, i++;
        else if (k === '--size') a.size = v.split('x').map(Number), i++;
        else if (k === '--threads') a.threads = Number(v), i++;
        else if (k === '--warmup') a.warmup = Number(v), i++;
        else if (k === '--top') a.top = Number(v), i++;
        else throw new Error('ort_profile: unknown argument ' + k);
    }
    if (!a.model || !a.input || !a.size || a.size.length !== 2)
        throw new Error('ort_profile: --model, --input and --size HxW are required');
    for (const k of ['threads', 'warmup', 'top'])
        if (!(Number.isInteger(a[k]) && a[k] >= 1)) throw new Error(`ort_profile: --${k} must be a whole number >= 1`);
    return a;
}

// "Conv 3x3 s2", "Conv 5x5dw", ... from the node's input shapes (x, weight) and output shape
function kind(ev) {
    const a = ev.args;
    if (a.op_name !== 'Conv') return a.op_name;
    const shapes = (a.input_type_shape || []).map((d) => Object.values(d)[0]);
    const out = Object.values((a.output_type_shape || [{}])[0])[0] || [];
    const [x, w] = shapes;
    if (!x || !w || w.length !== 4) return 'Conv';
    const dw = w[1] === 1 && w[0] > 1 ? 'dw' : '';
    const s2 = out.length === 4 && out[3] < x[3] ? ' s2' : '';
    return `Conv ${w[2]}x${w[3]}${dw}${s2}`;
}

async function main() {
    const a = parseArgs(process.argv);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ort-profile-'));
    try {
        const s = await ort.InferenceSession.create(a.model, {
            intraOpNumThreads: a.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
            enableProfiling: true, profileFilePrefix: path.join(dir, 'p'),
        });
        const b = fs.readFileSync(a.input);
        const x = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
        if (x.length !== 3 * a.size[0] * a.size[1]) throw new Error('ort_profile: input size does not match --size');
        const feeds = { [s.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, a.size[0], a.size[1]]) };
        for (let i = 0; i < a.warmup + 1; i++) await s.run(feeds);
        s.endProfiling();
        const file = fs.readdirSync(dir).find((f) => f.endsWith('.json'));
        const ev = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
        const runs = ev.filter((e) => e.cat === 'Session' && e.name === 'model_run');
        const last = runs[runs.length - 1];
        const nodes = ev.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') &&
            e.ts >= last.ts && e.ts <= last.ts + last.dur);
        const by = new Map();
        for (const e of nodes) {
            const k = kind(e);
            const t = by.get(k) || { ms: 0, n: 0 };
            t.ms += e.dur / 1000;
            t.n += 1;
            by.set(k, t);
        }
        console.log(`profiled run ${(last.dur / 1000).toFixed(1)} ms, ${a.threads} thread(s), ${nodes.length} nodes`);
        console.log('kind             nodes       ms');
        for (const [k, t] of [...by].sort((p, q) => q[1].ms - p[1].ms))
            console.log(`${k.padEnd(16)} ${String(t.n).padStart(5)} ${t.ms.toFixed(1).padStart(8)}`);
        console.log(`\nslowest ${a.top} nodes (ms, name, input shapes)`);
        for (const e of [...nodes].sort((p, q) => q.dur - p.dur).slice(0, a.top)) {
            const shapes = (e.args.input_type_shape || []).slice(0, 2).map((d) => JSON.stringify(Object.values(d)[0]));
            console.log(`${(e.dur / 1000).toFixed(1).padStart(7)} ${e.name.replace(/_kernel_time$/, '')} ${shapes.join(' ')}`);
        }
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

main().catch((e) => {
    console.error(e.message || e);
    process.exit(1);
});
