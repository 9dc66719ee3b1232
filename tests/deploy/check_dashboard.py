#!/usr/bin/env python3
"""Checks the monitoring kit against what the daemon really exports:
the Grafana dashboard parses as JSON, every panel has a unique id, a grid
position and at least one query, and every metric that a dashboard query or
an alert rule uses appears in a live instcald's /metrics output.

Usage: check_dashboard.py DASHBOARD.json RULES.yml METRICS.txt
Exits 1 (listing what is wrong) on any failure."""
import json
import re
import sys

dash_path, rules_path, metrics_path = sys.argv[1:4]
errors = []
exported = set()
for line in open(metrics_path):
    # a family is exported once declared, even before its first sample
    # (a counter with labels has no series until something is counted)
    m = re.match(r"# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)", line)
    if m:
        exported.add(m.group(1))
        if m.group(2) == "histogram":
            exported |= {m.group(1) + s for s in ("_bucket", "_sum", "_count")}
    elif line.strip() and not line.startswith("#"):
        exported.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
if not exported:
    sys.exit("check_dashboard: no samples in " + metrics_path)

# A metric in PromQL: an identifier directly followed by a label selector,
# a range or a closing parenthesis, or any instcald_/process_ identifier.
FUNCS = {"sum", "rate", "increase", "histogram_quantile", "max", "min", "avg", "count", "by",
         "on", "and", "or", "unless", "label_values", "irate", "delta", "abs", "topk", "without"}


def metrics_in(expr):
    names = set(re.findall(r"\b(?:instcald|process)_[a-zA-Z0-9_]+", expr))
    names |= {m for m in re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[)", expr) if m not in FUNCS}
    return names


dash = json.load(open(dash_path))
queries = []
ids = set()
for p in dash.get("panels", []):
    if p.get("id") in ids:
        errors.append(f"panel id {p.get('id')} twice")
    ids.add(p.get("id"))
    if not {"x", "y", "w", "h"} <= set(p.get("gridPos", {})):
        errors.append(f"panel {p.get('title')!r}: no gridPos")
    targets = [t.get("expr", "") for t in p.get("targets", [])]
    if not targets or not all(targets):
        errors.append(f"panel {p.get('title')!r}: no query")
    queries += [(f"panel {p.get('title')!r}", e) for e in targets]
for v in dash.get("templating", {}).get("list", []):
    q = v.get("query")
    if isinstance(q, dict):
        queries.append((f"variable {v.get('name')}", q.get("query", "")))
# rule expressions: `expr: ...` on one line, or `expr: |` and the more
# indented lines below it
lines = open(rules_path).read().split("\n")
for i, line in enumerate(lines):
    m = re.match(r"(\s*)expr:\s*(.*)", line)
    if not m:
        continue
    expr, indent = m.group(2), len(m.group(1))
    if expr.startswith("|"):
        body = []
        for nxt in lines[i + 1:]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            body.append(nxt)
        expr = "\n".join(body)
    queries.append((f"rule at line {i + 1}", expr))
if not any(w.startswith("rule") for w, _ in queries):
    errors.append("no rule expressions found in " + rules_path)

used = set()
for where, expr in queries:
    for name in metrics_in(expr):
        used.add(name)
        if name not in exported:
            errors.append(f"{where}: {name} is not exported by the daemon")
for e in sorted(set(errors)):
    print("check_dashboard: " + e)
print(f"check_dashboard: {len(dash.get('panels', []))} panels, {len(used)} metrics used, all exported"
      if not errors else f"check_dashboard: {len(set(errors))} problems")
sys.exit(1 if errors else 0)
