#!/bin/sh
# `instcal corrupt`: a corrupted copy keeps every label file byte for byte,
# changes every image, records each image's corruption (a family cycles
# through its members), is reproducible for a seed, and refuses bad
# arguments with a message.
# Usage: test_corrupt_cli.sh INSTCAL_BINARY
set -eu
BIN=$1
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
fail() { echo "FAIL: $*"; echo "0 passed, 1 failed"; exit 1; }
"$BIN" synth --out "$TMP/src" --count 5 --seed 5000 --size 64x128 --threads 1 >/dev/null 2>&1 ||
    fail "synth"
"$BIN" corrupt --in "$TMP/src" --out "$TMP/blur3" --corruption blur --severity 3 --seed 9 \
    >"$TMP/log" 2>&1 || { cat "$TMP/log"; fail "corrupt blur"; }
"$BIN" corrupt --in "$TMP/src" --out "$TMP/blur3b" --corruption blur --severity 3 --seed 9 \
    >/dev/null 2>&1 || fail "second run"
for i in 000000 000001 000002 000003 000004; do
    cmp -s "$TMP/src/panoptic/$i.png" "$TMP/blur3/panoptic/$i.png" || fail "label $i changed"
    cmp -s "$TMP/src/images/$i.png" "$TMP/blur3/images/$i.png" && fail "image $i unchanged"
    cmp -s "$TMP/blur3/images/$i.png" "$TMP/blur3b/images/$i.png" || fail "image $i not reproducible"
done
"$PY" - "$TMP/blur3/panoptic.json" "$TMP/src/panoptic.json" <<'PYEOF' || fail "panoptic.json"
import json, sys
d, s = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
info = d["info"]
assert info["corruption"] == "blur" and info["severity"] == 3, info
assert info["image_corruptions"] == ["defocus_blur", "motion_blur", "glass_blur",
                                     "gaussian_blur", "defocus_blur"], info["image_corruptions"]
assert d["annotations"] == s["annotations"] and d["images"] == s["images"]
print("ok: labels kept, images corrupted, each image's corruption recorded")
PYEOF
"$BIN" corrupt --in "$TMP/src" --out "$TMP/j" --corruption jpeg --severity 5 >/dev/null 2>&1 ||
    fail "single corruption"
grep -q '"corruption": "jpeg"' "$TMP/j/panoptic.json" || fail "single corruption not recorded"
for bad in "--corruption frost --severity 1" "--corruption fog --severity 6" \
           "--corruption fog --severity 0"; do
    # shellcheck disable=SC2086
    if "$BIN" corrupt --in "$TMP/src" --out "$TMP/bad" $bad >"$TMP/log" 2>&1; then
        fail "$bad accepted"
    fi
    grep -qi "corruption\|severity" "$TMP/log" || { cat "$TMP/log"; fail "no message for $bad"; }
done
if "$BIN" corrupt --in "$TMP/nowhere" --out "$TMP/bad" --corruption fog --severity 1 >"$TMP/log" 2>&1; then
    fail "a missing input set was accepted"
fi
grep -q "panoptic.json" "$TMP/log" || { cat "$TMP/log"; fail "no message for a missing set"; }
echo "ok: bad arguments refused with a message"
echo "2 passed, 0 failed"
