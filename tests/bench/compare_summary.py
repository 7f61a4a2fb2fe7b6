"""Summary of tests/bench/compare.sh: median rate and p99 per server, mode
and level over the rounds, the meshca/cfssl ratios of the medians, and
whether every request carried a CSR of its own (loadgen's csrs=N
distinct|cycled|fixed)."""

import re
import statistics
import sys
from collections import defaultdict

FIELDS = re.compile(r"(\w[\w-]*)=([\d.]+)")
CSRS = re.compile(r"csrs=(\d+) (distinct|cycled|fixed)")


def main(path):
    runs = defaultdict(list)
    csrs = []       # (label, mode, c, kind) of every run
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3:
                continue
            label, mode, c = parts[0], parts[1], int(parts[2])
            kv = dict(FIELDS.findall(line))
            m = CSRS.search(line)
            csrs.append((label, mode, c, m.group(2) if m else "unknown"))
            rate = float(kv.get("rate", 0))
            runs[(mode, c, label)].append(
                (rate, float(kv.get("p50", 0)), float(kv.get("p99", 0)),
                 float(kv.get("per-request", 0))))
    modes = sorted({k[0] for k in runs}, reverse=True)
    levels = sorted({k[1] for k in runs})
    print("\n# medians over rounds: rate/s (p50 ms, p99 ms, server CPU µs per cert)")
    print("| mode | c | meshca | cfssl, no DB | cfssl, certdb | meshca / cfssl | meshca / cfssl certdb |")
    print("|---|---:|---|---|---|---:|---:|")
    for mode in modes:
        for c in levels:
            cells, rates = [], {}
            for label in ("meshca", "cfssl-nodb", "cfssl-db"):
                v = runs.get((mode, c, label))
                if not v:
                    cells.append("—")
                    continue
                rate = statistics.median(x[0] for x in v)
                rates[label] = rate
                cells.append(f"{rate:,.0f} ({statistics.median(x[1] for x in v):.1f}, "
                             f"{statistics.median(x[2] for x in v):.1f}, "
                             f"{statistics.median(x[3] for x in v):.0f})")

            def ratio(other):
                if "meshca" in rates and rates.get(other):
                    return f"{rates['meshca'] / rates[other]:.2f}"
                return "—"
            print(f"| {mode} | {c} | " + " | ".join(cells) +
                  f" | {ratio('cfssl-nodb')} | {ratio('cfssl-db')} |")
    print_csrs(csrs)


def print_csrs(csrs):
    kinds = {k for *_, k in csrs}
    if kinds == {"fixed"}:
        print("\n# CSRs: one fixed CSR for every request")
    elif kinds == {"distinct"}:
        print("\n# CSRs: a fresh key for every request, in every run")
    else:
        other = [f"{label} {mode} c={c}: {k}" for label, mode, c, k in csrs if k != "distinct"]
        print(f"\n# CSRs: fresh keys, but not one per request in {len(other)} of {len(csrs)} "
              "runs (more requests than CSRs: raise FRESH): " + "; ".join(other))


if __name__ == "__main__":
    main(sys.argv[1])
