#!/usr/bin/env bash
# Reproduces the shipped default model (models/default.safetensors) and its
# cross-domain table (docs/results.md). Every stage checkpoints and resumes,
# so the script can be stopped and run again; finished stages are skipped.
#
#   scripts/train_default.sh [WORKDIR]      (default WORKDIR: /work/ckpt)
#   INSTCAL=BINARY scripts/train_default.sh ...   (default: build/core/cli/instcal;
#              a copy keeps a long run safe from rebuilds of the tree)
#
# Stages (all on SynthCity *source* scenes only; no target domain is used for
# training or for choosing a hyper-parameter):
#   1. base:   instcal train, synthcity-small, batch 8, 128x256 crops. Made in
#              legs, each resuming the previous one's checkpoint with a
#              longer schedule (resuming is bit-exact; the earlier schedules
#              proved short): 3000 and then 6000 iterations on scenes rendered
#              at 128x256, then up to 10500 on scenes rendered at 256x512
#              (128x256 crops of them), so that the model also learns the
#              2x larger scale at which it is tested (poles and persons are a
#              pixel or two wide at 128x256)
#   1b. ft:    4000 more iterations from those weights on whole 256x512 images
#              with the thin classes weighted (issue 15: the stronger base)
#   2. m:      the manual strength chosen on strongly augmented source images
#              (instcal eval --suite picks it); it also initialises InstCal-U
#              and -G and sets InstCal-C's prior (the official code fixes both at 0.1)
#   3. u, c, g: instcal calibrate --method u, then c, then g, strong augmentation,
#              on whole 256x512 images (the per-image statistics must be those of
#              the image size met at test time; 128x256 crops learned worse rules)
#   4. eval:   instcal eval --suite synthcity and --suite robust at 256x512
#              -> docs/results.md
set -euo pipefail
main() { # (the whole script is read before it runs, so editing it mid-run is safe)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${1:-/work/ckpt}
BIN=${INSTCAL:-$ROOT/build/core/cli/instcal}
CFG="$ROOT/models/configs/synthcity-small.json"
mkdir -p "$WORK"
cd "$WORK"

base=$WORK/synthcity-small-base-10500.safetensors
train_base() { # ITERS RENDER OUT [extra instcal train options]
    iters=$1 render=$2 out=$3
    shift 3
    resume=""
    [ -f "$WORK/synthcity-small/last_checkpoint" ] && resume=--resume
    "$BIN" train --config "$CFG" --synth 60000 --synth-seed 0 --render "$render" --size 128x256 \
        --batch 8 --iters "$iters" --lr 1e-3 --warmup 200 --seed 1 \
        --checkpoint-dir "$WORK/synthcity-small" --checkpoint-every 100 --log-every 20 \
        --out "$out" $resume "$@"
}
leg() { # ITERS RENDER OUT [extra]: runs the leg unless its model or the final one exists
    for f in "$3" "$base"; do [ -f "$f" ] && return 0; done
    train_base "$@"
}
leg 3000 128x256 "$WORK/synthcity-small-base-3000.safetensors"
leg 6000 128x256 "$WORK/synthcity-small-base-6000.safetensors"
# 200 iterations under a 9000-iteration schedule, then the schedule was
# lengthened to 10500 (instcal train --stop-at replays exactly that)
[ -f "$base" ] || train_base 9000 256x512 /dev/null --stop-at 6200
leg 10500 256x512 "$base"

# 1b. The stronger base network (issue 15): 4000 more iterations from the
# 10500-iteration weights (--init; Adam starts afresh), now on whole 256x512
# images (the test size: ASPP pooling and thin objects as at test time), scale
# U(0.75, 1.5), the thin classes weighted (pole x3, person x1.5 on top of the
# small-instance x3), batch 4, fresh scenes (seed 15). Validation on 100
# source scenes of seed 3000 only prints progress (it chooses nothing).
ft=$WORK/synthcity-small-ft-4000.safetensors
if [ ! -f "$ft" ]; then
    [ -f "$WORK/val-3000/panoptic.json" ] ||
        "$BIN" synth --out "$WORK/val-3000" --domain source --count 100 --seed 3000 \
            --size 256x512 --threads 2
    resume=""
    [ -f "$WORK/synthcity-small-ft/last_checkpoint" ] && resume=--resume
    "$BIN" train --config "$CFG" --init "$base" --synth 60000 --synth-seed 15 --render 256x512 \
        --size 256x512 --scale 0.75,1.5 --class-weights pole=3,person=1.5 --batch 4 --iters 4000 \
        --lr 5e-4 --warmup 100 --seed 21 --checkpoint-dir "$WORK/synthcity-small-ft" \
        --checkpoint-every 100 --log-every 10 --val "$WORK/val-3000" --val-every 500 \
        --val-limit 100 --out "$ft" $resume
fi

# 2. The manual strength on augmented source data (the suite's own selection).
if [ ! -f "$WORK/manual_m_ft" ]; then
    "$BIN" eval --suite synthcity --model "$ft" --root "$WORK/eval-256x512" --count 200 \
        --rows manual --cells "$WORK/cells-ft" --json "$WORK/m_ft.json" >/dev/null
    python3 -c "import json; print(json.load(open('$WORK/m_ft.json'))['manual_m'])" > "$WORK/manual_m_ft"
fi
m=$(cat "$WORK/manual_m_ft")
CAL_ITERS=600
echo "manual m chosen on augmented source data: $m"

calibrate() { # NAME OUT [instcal calibrate options]: resumable
    name=$1 out=$2
    shift 2
    [ -f "$out" ] && return 0
    resume=""
    [ -f "$WORK/$name/last_checkpoint" ] && resume=--resume
    "$BIN" calibrate --synth 60000 --render 256x512 --size 256x512 --batch 4 --iters "$CAL_ITERS" \
        --lr 2.5e-3 --warmup 50 --checkpoint-dir "$WORK/$name" --checkpoint-every 50 \
        --out "$out" $resume "$@"
}
# 3. InstCal-U from m, InstCal-C with prior m (the paper's modes, strong augmentation),
# then InstCal-G (issue 15): gates set on 32 clean source images, 30% of the training
# images left clean, no crop padding (scale >= 1).
u=$WORK/synthcity-small-ft-u.safetensors
uc=$WORK/synthcity-small-ft-uc.safetensors
ucg=$WORK/synthcity-small-ft-ucg.safetensors
calibrate calib-ft-u "$u" --model "$ft" --method u --init "$m" --synth-seed 7 --seed 2
calibrate calib-ft-c "$uc" --model "$u" --method c --prior "$m" --synth-seed 8 --seed 3
# InstCal-G learns 3600 iterations: on the augmented source images that choose manual's m,
# its 600-, 1800- and 3600-iteration runs scored 69.40, 69.84 and 70.33 mIoU (instcal-g) and
# 71.15, 71.63 and 71.86 (instcal-e) (models/README.md); nothing else chose it.
CAL_ITERS=3600
calibrate calib-ft-g "$ucg" --model "$uc" --method g --init "$m" --synth-seed 9 --seed 4 \
    --scale 1,2 --clean-fraction 0.3

# 4. The tables of docs/results.md: SynthCity's domains and the held-out
# robustness suite (docs/robustness.md), 200 scenes per domain and per set,
# every mode (TENT costs several forwards per image: ~76 min of the
# shared machine for its 20 cells); each finished cell is kept under --cells,
# so a stopped sweep resumes (the shipped tables were made in two sessions
# this way, docs/results.md). The robust suite renders its 200 clean scenes
# (seed 5000) and the twelve corrupted sets from them. instcal-e learns
# nothing: it averages the instcal-g forward and the tbn forward of the
# mirrored image (docs/calibration.md).
ROWS=none,manual,tbn,instcal-u,instcal-c,instcal-g,instcal-e,tent
"$BIN" eval --suite synthcity --model "$ucg" --root "$WORK/eval-256x512" \
    --count 200 --rows "$ROWS" --cells "$WORK/cells-synthcity" --markdown "$WORK/results-table.md" \
    --json "$WORK/results.json"
"$BIN" eval --suite robust --model "$ucg" --root "$WORK/robust-256x512" \
    --count 200 --rows "$ROWS" --cells "$WORK/cells-robust" --markdown "$WORK/robust-table.md" \
    --json "$WORK/robust.json"
cp "$ucg" "$ROOT/models/default.safetensors"
}
main "$@"
