#!/bin/sh
# Every error return records its message: a function that fails returns
# ic_error_set(IC_E..., "what failed", ...) or ic_error_prefix(...), or
# passes on the rc of a callee that did, never a bare `return IC_E...;`,
# which would leave ic_error_message() with stale text from an earlier
# failure. The error names come from IC_ERR_MAP in core/base/err.h, so other
# IC_E* enumerators (the engine's IC_ENG_* conv kinds) are not caught.
# Usage: check_error_returns.sh SOURCE_ROOT (scans core/ and server/)
set -eu
ROOT=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
names=$(sed -n 's/^ *X(\(E[A-Z]*\), .*/\1/p' "$ROOT/core/base/err.h" | paste -sd'|' -)
[ -n "$names" ] || { echo "FAIL: no error names found in $ROOT/core/base/err.h"; exit 1; }
hits=$(grep -rnE --include='*.c' --include='*.h' "return[[:space:]]+\(?IC_($names)\)?[[:space:]]*;" \
    "$ROOT/core" "$ROOT/server" || true)
if [ -n "$hits" ]; then
    echo "$hits" | sed "s|^$ROOT/||"
    echo "FAIL: $(echo "$hits" | wc -l) bare error return(s): record what failed with ic_error_set()"
    exit 1
fi
echo "ok: no bare error return in core/ or server/ (codes: $names)"
