"""Combine rounds of bench (kiln) and torch_bench.py output into the table
and the one-line-a-case report of tools/bench/run.

    report.py THREADS KILN_FILE... -- TORCH_FILE...

Each file holds "<framework> <case> <value>" lines from one round; a case's
value is the median over rounds (rounds alternate kiln and torch, so both
see the same drift of a shared machine)."""
import statistics
import sys


def read(files):
    values, order = {}, []
    for f in files:
        with open(f) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) != 3:
                    continue
                _, case, v = parts
                if case not in values:
                    values[case] = []
                    order.append(case)
                values[case].append(float(v))
    return {c: statistics.median(v) for c, v in values.items()}, order


def main():
    threads = sys.argv[1]
    split = sys.argv.index("--")
    kiln, order = read(sys.argv[2:split])
    torch, _ = read(sys.argv[split + 1:])
    print("%-28s %14s %14s %8s" % ("case", "kiln", "torch", "ratio"))
    lines = []
    for c in order:
        if c.startswith("floor_"):
            continue
        if c in torch and torch[c] > 0:
            t, r = "%.4g" % torch[c], "%.2f" % (kiln[c] / torch[c])
        else:
            t, r = "peer-unavailable" if not torch else "n/a", "-"
        print("%-28s %14.4g %14s %8s" % (c, kiln[c], t, r))
        lines.append("%s_t%s kiln=%.4g torch=%s ratio=%s" % (c, threads, kiln[c], t, r))
    for c in order:
        if not c.startswith("floor_"):
            continue
        s = "step_" + c[len("floor_"):]
        lines.append("%s_t%s kiln=%.4g floor=%.4g ratio=%.2f" % (s, threads, kiln[s], kiln[c], kiln[s] / kiln[c]))
    print()
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
