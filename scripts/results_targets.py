#!/usr/bin/env python3
"""Issue 15's targets from the JSON tables of `instcal eval --suite` (docs/results.md).

    scripts/results_targets.py SYNTHCITY.json ROBUST.json [RULE ...]

Prints Markdown: the robust suite's mean per family (over its three
severities) for every mode, then each target with the measured numbers and
met / missed for each RULE (the candidate new modes; default: those of
instcal-g and instcal-e that the tables have), and how far an oracle that picks the best row of each shifted
set by its labels gets above tbn (a bound for rules that choose among the
modes, not a result). A cell's numbers are the suite's own (mIoU, PQ, ECE of the
pooled images of a set); a mean is the unweighted mean over sets.
"""
import json
import sys

FAMILIES = ("noise", "blur", "weather", "digital")


def load(path):
    d = json.load(open(path))
    rows = d["rows"]
    clean = "clean" if d["suite"] == "robust" else "source"
    return d, rows, clean


def mean(rows, mode, sets, key):
    return sum(metric(rows[mode][s], key) for s in sets) / len(sets)


def metric(cell, key):
    return 100 * (cell["pq"]["pq"] if key == "pq" else cell[key])


def fmt(x):
    return "%.1f" % x


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    syn, srows, sclean = load(argv[1])
    rob, rrows, rclean = load(argv[2])
    sshift = [s for s in srows["none"] if s != sclean]
    rshift = [s for s in rrows["none"] if s != rclean]
    modes = list(rrows)

    print("Robust suite, mean per family over severities 1, 3 and 5 (mIoU / PQ / ECE, %):\n")
    print("| mode | " + " | ".join(FAMILIES) + " | mean shifted |")
    print("|---|" + "---|" * (len(FAMILIES) + 1))
    for m in modes:
        cells = []
        for f in FAMILIES:
            sets = [s for s in rshift if s.startswith(f + "-")]
            cells.append(" / ".join(fmt(mean(rrows, m, sets, k)) for k in ("miou", "pq", "ece")))
        cells.append(" / ".join(fmt(mean(rrows, m, rshift, k)) for k in ("miou", "pq", "ece")))
        print("| %s | %s |" % (m, " | ".join(cells)))
    print()

    def verdict(ok):
        return "**met**" if ok else "**missed**"

    print("| target | measured | result |")
    print("|---|---|---|")
    rules = argv[3:] or [r for r in ("instcal-g", "instcal-e") if r in srows and r in rrows]
    for rule in rules:
        g, n = metric(srows[rule][sclean], "miou"), metric(srows["none"][sclean], "miou")
        print("| SynthCity source: %s within 0.5 mIoU of none | %s against %s (%+.2f) | %s |"
              % (rule, fmt(g), fmt(n), g - n, verdict(g - n >= -0.5)))
        gr, nr = metric(rrows[rule][rclean], "miou"), metric(rrows["none"][rclean], "miou")
        print("| robust suite's clean set (not a target, the same question) | %s against %s "
              "(%+.2f) | %s |" % (fmt(gr), fmt(nr), gr - nr,
                                  "within 0.5" if gr - nr >= -0.5 else "not within 0.5"))
        for name, rows, shift in (("SynthCity shifted domains", srows, sshift),
                                  ("held-out suite", rrows, rshift)):
            gm, tm = mean(rows, rule, shift, "miou"), mean(rows, "tbn", shift, "miou")
            ge, te = mean(rows, rule, shift, "ece"), mean(rows, "tbn", shift, "ece")
            wins = sum(metric(rows[rule][s], "miou") > metric(rows["tbn"][s], "miou")
                       for s in shift)
            print("| mean of the %s: %s above tbn by >= 2 mIoU | %s against %s (%+.2f; "
                  "above tbn on %d of %d sets) | %s |"
                  % (name, rule, fmt(gm), fmt(tm), gm - tm, wins, len(shift),
                     verdict(gm - tm >= 2)))
            print("| ... and lower ECE | %.2f against %.2f | %s |" % (ge, te, verdict(ge < te)))
    for name, rows, shift in (("SynthCity", srows, sshift), ("held-out", rrows, rshift)):
        best = [max(metric(rows[m][s], "miou") for m in rows) for s in shift]
        bm, tm = sum(best) / len(best), mean(rows, "tbn", shift, "miou")
        print("| not a rule: the best of the %d rows on each %s set, chosen by its own labels "
              "(an oracle) | %s against tbn's %s (%+.2f) | %s |"
              % (len(rows), name, fmt(bm), fmt(tm), bm - tm,
                 "would reach +2" if bm - tm >= 2 else "below +2 too"))
    for m in ("instcal-u", "instcal-c"):
        if m not in srows or m not in rrows:
            continue
        lost = []
        total = 0
        for rows, shift in ((srows, sshift), (rrows, rshift)):
            for s in shift:
                total += 1
                for k in ("miou", "pq"):
                    if metric(rows[m][s], k) <= metric(rows["none"][s], k):
                        lost.append("%s %s" % (s, k))
        print("| %s beats none on mIoU and PQ on every shifted set (%d) | %s | %s |"
              % (m, total, "lost: " + ", ".join(lost) if lost else "beats it on all",
                 verdict(not lost)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
