"""PyTorch's side of kiln's benchmarks: the same cases, data and recipe as
bench.c (MLP 784-H-10, ReLU, softmax cross-entropy, SGD lr 0.1), printed as
"torch <case> <value>" lines. Threads are pinned by tools/bench/run through
OMP_NUM_THREADS and OPENBLAS_NUM_THREADS (Debian's PyTorch does its matrix
products in OpenBLAS, which ignores torch.set_num_threads) and here.

With --kiln-lib (libkiln_bench_pair.so), each training and inference case
also runs kiln's, alternating kiln and PyTorch repetitions, and prints
"kiln <case> <value>" lines too: both then see the same drift of a shared
machine."""
import argparse
import ctypes
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

N_DATA, N_IN, N_OUT = 2000, 784, 10


def make_data():
    i = np.arange(N_DATA, dtype=np.int64)[:, None]
    j = np.arange(N_IN, dtype=np.int64)[None, :]
    x = ((i * 7919 + j * 104729) % 1000).astype(np.float32) / 1000.0
    y = ((np.arange(N_DATA) * 31) % N_OUT).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def time_per_call(fn, reps, rep_seconds):
    """Median seconds per call over reps repetitions, after a warm-up."""
    t0 = time.perf_counter()
    warm = 0
    while warm < 3 or time.perf_counter() - t0 < rep_seconds / 2:
        fn(warm)
        warm += 1
    per = (time.perf_counter() - t0) / warm
    k = max(1, int(rep_seconds / per))
    v = []
    for _ in range(reps):
        s = time.perf_counter()
        for i in range(k):
            fn(i)
        v.append((time.perf_counter() - s) / k)
    return statistics.median(v)


def time_alternating(fns, reps, rep_seconds):
    """Like time_per_call for several functions, their repetitions
    interleaved (a, b, a, b, ...); a median for each."""
    ks = []
    for fn in fns:
        t0 = time.perf_counter()
        warm = 0
        while warm < 3 or time.perf_counter() - t0 < rep_seconds / 2:
            fn(warm, 1)
            warm += 1
        ks.append(max(1, int(rep_seconds / ((time.perf_counter() - t0) / warm))))
    v = [[] for _ in fns]
    for _ in range(reps):
        for f, fn in enumerate(fns):
            v[f].append(fn(0, ks[f]) / ks[f])
    return [statistics.median(x) for x in v]


class KilnPair:
    """kiln's step (or forward) for one case, through libkiln_bench_pair."""

    def __init__(self, lib, hidden, batch, mode):
        """mode (pair.c): 1 training step, 0 forward, 2 exported .so, 3 the
        same built with -march=native, 4 the training program's forward, 5
        the export with its products through CBLAS."""
        self.lib, self.h = lib, lib.kiln_pair_open(hidden, batch, mode)

    def __call__(self, _i, k):
        return self.lib.kiln_pair_run(self.h, k)

    def close(self):
        self.lib.kiln_pair_close(self.h)


def repeat(fn):
    """fn(i) -> a timed function (i, k) -> seconds for k calls."""
    def timed(i, k):
        t = time.perf_counter()
        for j in range(k):
            fn(i + j)
        return time.perf_counter() - t
    return timed


def model(hidden):
    torch.manual_seed(1)
    m = torch.nn.Sequential(torch.nn.Linear(N_IN, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, N_OUT))
    for layer in (m[0], m[2]):
        torch.nn.init.normal_(layer.weight, 0.0, 0.01)
        torch.nn.init.zeros_(layer.bias)
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--kiln-lib", help="libkiln_bench_pair.so: time kiln alternately")
    ap.add_argument("--infer-only", action="store_true",
                    help="only the 784-100-10 inference cases (b1, b64): forward, exports, PyTorch no_grad")
    a = ap.parse_args()
    lib = None
    if a.kiln_lib:
        lib = ctypes.CDLL(a.kiln_lib)
        lib.kiln_pair_open.restype = ctypes.c_void_p
        lib.kiln_pair_open.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.kiln_pair_run.restype = ctypes.c_double
        lib.kiln_pair_run.argtypes = [ctypes.c_void_p, ctypes.c_long]
        lib.kiln_pair_close.argtypes = [ctypes.c_void_p]
    reps, rep_seconds = (5, 0.04) if a.quick else (max(5, a.reps), 0.25)
    torch.set_num_threads(a.threads)
    x, y = make_data()
    for hidden in (100,) if a.infer_only else (100, 500):
        name = "784-%d-10" % hidden
        m = model(hidden)
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        for b in () if a.infer_only else (1, 32, 128, 1000):
            def step(i, b=b):
                off = (i * b) % (N_DATA - b + 1)
                xb, yb = x[off:off + b], y[off:off + b]
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(m(xb), yb)
                loss.backward()
                opt.step()
            if lib:
                kp = KilnPair(lib, hidden, b, 1)
                tk, t = time_alternating([kp, repeat(step)], reps, rep_seconds)
                kp.close()
                print("kiln train_%s_b%d %.1f" % (name, b, b / tk))
                print("kiln step_%s_b%d %.4f" % (name, b, tk * 1e3))
            else:
                t = time_per_call(step, reps, rep_seconds)
            print("torch train_%s_b%d %.1f" % (name, b, b / t))
            print("torch step_%s_b%d %.4f" % (name, b, t * 1e3))
            sys.stdout.flush()
        for b in (1, 64):
            def infer(i, b=b):
                off = (i * b) % (N_DATA - b + 1)
                with torch.no_grad():
                    F.softmax(m(x[off:off + b]), dim=1)
            # kiln's forward program, its export (.so: the JIT's flags, then
            # -march=native, then CBLAS) and the training program's forward, each
            # beside PyTorch eager under no_grad (the same figure for each)
            cases = [("infer", 0), ("export", 2), ("export_native", 3), ("export_blas", 5), ("infer_train", 4)]
            if lib:
                kps = [KilnPair(lib, hidden, b, mode) for _, mode in cases]
                times = time_alternating(kps + [repeat(infer)], reps, rep_seconds)
                for kp in kps:
                    kp.close()
                t = times[-1]
                for (case, _), tk in zip(cases, times):
                    print("kiln %s_%s_b%d %.2f" % (case, name, b, tk * 1e6))
            else:
                t = time_per_call(infer, reps, rep_seconds)
            for case, _ in cases:
                print("torch %s_%s_b%d %.2f" % (case, name, b, t * 1e6))
    if not a.infer_only:
        lstm_case(lib, reps, rep_seconds)
    print("torch peak_rss_mb %.1f" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0))


def lstm_case(lib, reps, rep_seconds, hidden=256, steps=50, batch=32, n_in=256):
    """nn.LSTM(256, 256) over 50 steps, batch 32: training steps/s, the cost
    the mean of the squared outputs, SGD lr 0.01 (bench_lstm.h)."""
    t = np.arange(steps)[:, None, None]
    b = np.arange(batch)[None, :, None]
    j = np.arange(n_in)[None, None, :]
    x = torch.from_numpy((((t * 7919 + b * 104729 + j * 31) % 1000) / 1000.0 - 0.5).astype(np.float32))
    torch.manual_seed(1)
    m = torch.nn.LSTM(n_in, hidden)
    opt = torch.optim.SGD(m.parameters(), lr=0.01)

    def step(_i):
        opt.zero_grad(set_to_none=True)
        out, _ = m(x)
        out.pow(2).mean().backward()
        opt.step()
    name = "train_lstm%d_t%d_b%d" % (hidden, steps, batch)
    if lib:
        lib.kiln_lstm_pair_open.restype = ctypes.c_void_p
        lib.kiln_lstm_pair_open.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.kiln_lstm_pair_run.restype = ctypes.c_double
        lib.kiln_lstm_pair_run.argtypes = [ctypes.c_void_p, ctypes.c_long]
        lib.kiln_lstm_pair_close.argtypes = [ctypes.c_void_p]
        h = lib.kiln_lstm_pair_open(hidden, steps, batch)
        tk, tt = time_alternating([lambda _i, k: lib.kiln_lstm_pair_run(h, k), repeat(step)], reps, rep_seconds)
        lib.kiln_lstm_pair_close(h)
        print("kiln %s %.3f" % (name, 1 / tk))
    else:
        tt = time_per_call(step, reps, rep_seconds)
    print("torch %s %.3f" % (name, 1 / tt))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
