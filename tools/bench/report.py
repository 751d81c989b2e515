"""Combine rounds of bench (kiln) and torch_bench.py output into the table
and the one-line-a-case report of tools/bench/run.

    report.py THREADS KILN_FILE... -- TORCH_FILE...

Each file holds "<framework> <case> <value>" lines from one round; a case's
value is the median over rounds. torch_bench.py, given kiln's pair library,
also prints kiln's figures for the cases it times alternately with PyTorch
in one process; those are the ones compared with PyTorch. bench.c's own
figures serve the rest (compile, memory) and the GEMM floor lines, whose
step and floor bench.c times alternately itself."""
import statistics
import sys


def read(files, framework):
    values, order = {}, []
    for f in files:
        with open(f) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) != 3 or parts[0] != framework:
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
    kiln, order = read(sys.argv[2:split], "kiln")
    torch, _ = read(sys.argv[split + 1:], "torch")
    paired, _ = read(sys.argv[split + 1:], "kiln")
    bench_step = dict(kiln)  # bench.c's step, timed beside its floor
    kiln.update(paired)
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
        lines.append("%s_t%s kiln=%.4g floor=%.4g ratio=%.2f" % (s, threads, bench_step[s], kiln[c],
                                                                 bench_step[s] / kiln[c]))
    print()
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
