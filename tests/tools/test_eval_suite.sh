#!/bin/sh
# `instcal eval --suite synthcity` end to end on the shipped model (the
# SynthCity labels need its 19 classes) with 3 images per domain: it renders the seven domains and the augmented source set,
# picks the manual m, and writes a table with every row x domain cell (JSON
# and Markdown). A second run at another size refuses the sets rendered at
# the first one instead of scoring against labels of the wrong size. The
# held-out `--suite robust` renders its clean scenes (seed 5000) and the
# twelve family x severity sets with the clean labels and fills its table;
# every cell scores exactly --count images; with --cells it keeps every cell
# in a file and resumes from them.
# Usage: test_eval_suite.sh INSTCAL_BINARY
set -eu
BIN=$1
PY=/usr/bin/python3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODEL=$ROOT/models/default.safetensors
[ -f "$MODEL" ] || { echo "SKIP: no default model yet"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
fail() { echo "FAIL: $*"; echo "0 passed, 1 failed"; exit 1; }

OPENBLAS_NUM_THREADS=1 "$BIN" eval --suite synthcity --model "$MODEL" --root "$TMP/eval" \
    --count 3 --aug-count 2 --size 128x256 --rows none,manual,tbn \
    --markdown "$TMP/t.md" --json "$TMP/t.json" >"$TMP/out" 2>&1 ||
    { cat "$TMP/out"; fail "the suite exited with an error"; }
"$PY" - "$TMP/t.json" <<'PYEOF' || fail "JSON table"
import json, sys
d = json.load(open(sys.argv[1]))
assert 0.0 <= d["manual_m"] <= 1.0, d["manual_m"]
rows = d["rows"]
assert set(rows) == {"none", "manual", "tbn"}, list(rows)
for mode, doms in rows.items():
    assert set(doms) == {"source", "fog1", "fog2", "fog3", "night", "rain", "style"}, list(doms)
    for name, c in doms.items():
        assert c["images"] == 3, (mode, name, c["images"])
        for v in (c["miou"], c["pq"]["pq"], c["ece"]):
            assert 0.0 <= v <= 1.0, (mode, name, v)
print("ok: JSON has 3 rows x 7 domains")
PYEOF
grep -q "^| tbn" "$TMP/t.md" || fail "Markdown table has no tbn row"
grep -q "fog3" "$TMP/t.md" || fail "Markdown table has no fog3 column"
echo "ok: Markdown table"

if "$BIN" eval --suite synthcity --model "$MODEL" --root "$TMP/eval" --count 3 --aug-count 2 \
    --size 64x128 --rows none >"$TMP/out2" 2>&1; then
    fail "sets rendered at 128x256 were scored at 64x128"
fi
grep -q "holds 128x256 images but the suite needs 64x128" "$TMP/out2" ||
    { cat "$TMP/out2"; fail "no clear message for a set of the wrong size"; }
echo "ok: a set of another size is refused"

OPENBLAS_NUM_THREADS=1 "$BIN" eval --suite robust --model "$MODEL" --root "$TMP/rob" \
    --count 2 --size 64x128 --rows none,tbn --json "$TMP/r.json" >"$TMP/out3" 2>&1 ||
    { cat "$TMP/out3"; fail "the robust suite exited with an error"; }
"$PY" - "$TMP/r.json" "$TMP/rob" <<'PYEOF' || fail "robust suite"
import json, os, sys
d, root = json.load(open(sys.argv[1])), sys.argv[2]
want = ["clean"] + ["%s-%d" % (f, s) for f in ("noise", "blur", "weather", "digital") for s in (1, 3, 5)]
assert d["suite"] == "robust" and set(d["rows"]) == {"none", "tbn"}, d.keys()
for mode, doms in d["rows"].items():
    assert sorted(doms) == sorted(want), list(doms)
    assert all(c["images"] == 2 for c in doms.values())
clean = json.load(open(os.path.join(root, "clean", "panoptic.json")))
assert clean["info"]["seed"] == 5000, clean["info"]
for name in want[1:]:
    j = json.load(open(os.path.join(root, name, "panoptic.json")))
    assert j["annotations"] == clean["annotations"], name
    assert j["info"]["severity"] == int(name.split("-")[1]), name
print("ok: robust suite, 2 rows x 13 domains, labels of the clean scenes")
PYEOF
# --count is the number of images every cell scores: the first 1 of the
# 2-image sets above, and a set with fewer images than asked is refused
# (a set rendered earlier with more images was once scored whole).
OPENBLAS_NUM_THREADS=1 "$BIN" eval --suite robust --model "$MODEL" --root "$TMP/rob" \
    --count 1 --size 64x128 --rows none --json "$TMP/r1.json" >"$TMP/out6" 2>&1 ||
    { cat "$TMP/out6"; fail "the robust suite at --count 1 exited with an error"; }
"$PY" - "$TMP/r1.json" <<'PYEOF' || fail "--count 1 on sets of 2"
import json, sys
cells = json.load(open(sys.argv[1]))["rows"]["none"]
assert all(c["images"] == 1 for c in cells.values()), {k: c["images"] for k, c in cells.items()}
PYEOF
if "$BIN" eval --suite robust --model "$MODEL" --root "$TMP/rob" --count 3 --size 64x128 \
    --rows none >"$TMP/out7" 2>&1; then
    fail "sets of 2 images were scored at --count 3"
fi
grep -q "holds 2 images but 3 were asked for" "$TMP/out7" ||
    { cat "$TMP/out7"; fail "no clear message for a set with too few images"; }
echo "ok: --count images per cell, too few refused"
# --cells: each finished cell is kept in its own file and read back by a
# later run with the same key (model, count, size, mode, m); a cell whose key
# differs is measured again. A planted value proves which one happened.
# (One image per set: the ASan build runs this test too.)
OPENBLAS_NUM_THREADS=1 "$BIN" eval --suite robust --model "$MODEL" --root "$TMP/rob1" \
    --count 1 --size 64x128 --rows none,manual --aug-count 1 --cells "$TMP/cells" \
    --json "$TMP/c1.json" >"$TMP/out4" 2>&1 || { cat "$TMP/out4"; fail "--cells run"; }
[ "$(ls "$TMP/cells" | grep -c '@')" = 26 ] && [ -f "$TMP/cells/manual_m.json" ] ||
    { ls "$TMP/cells"; fail "--cells did not keep 2 x 13 cells and the manual m"; }
"$PY" - "$TMP/cells" <<'PYEOF' || fail "planting cells"
import json, sys
d = sys.argv[1]
j = json.load(open(d + "/none@blur-3.json")); j["miou"] = 0.123456
json.dump(j, open(d + "/none@blur-3.json", "w"))
j = json.load(open(d + "/none@clean.json")); j["miou"] = 0.654321; j["key"] += " stale"
json.dump(j, open(d + "/none@clean.json", "w"))
j = json.load(open(d + "/manual_m.json")); j["manual_m"] = 0.3
json.dump(j, open(d + "/manual_m.json", "w"))
PYEOF
OPENBLAS_NUM_THREADS=1 "$BIN" eval --suite robust --model "$MODEL" --root "$TMP/rob1" \
    --count 1 --size 64x128 --rows none,manual --aug-count 1 --cells "$TMP/cells" \
    --json "$TMP/c2.json" >"$TMP/out5" 2>&1 || { cat "$TMP/out5"; fail "second --cells run"; }
"$PY" - "$TMP/c1.json" "$TMP/c2.json" <<'PYEOF' || { cat "$TMP/out5"; fail "--cells reuse"; }
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert b["rows"]["none"]["blur-3"]["miou"] == 0.123456, "a kept cell was measured again"
ca, cb = a["rows"]["none"]["clean"], b["rows"]["none"]["clean"]
assert cb["miou"] == ca["miou"] and cb["forward_ms"] != ca["forward_ms"], \
    "a cell of another key was reused"
assert b["manual_m"] == 0.3, "the kept manual m was not reused"
assert "key" not in b["rows"]["none"]["noise-1"]
for d in a["rows"]["none"]:
    if d not in ("blur-3", "clean"):
        assert a["rows"]["none"][d] == b["rows"]["none"][d], d
print("ok: --cells reuses the cells of the same key only")
PYEOF
echo "6 passed, 0 failed"
