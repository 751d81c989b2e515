"""The Blocks introduction recipe in plain NumPy (float32), written apart
from kiln to cross-check examples/blocks_intro: a 784-100-10 ReLU/softmax
MLP, cross-entropy + 0.005 (|W1|^2 + |W2|^2), W = 0.01 N(0, 1) from
RandomState(1) for each layer, b = 0, SGD 0.1, batches of 256 in order, and
the test cost as the mean of per-batch (1024) costs.

    /usr/bin/python3 tools/check/blocks_intro_numpy.py [EPOCHS]

Needs Debian's python3-numpy (not installed by scripts/setup) and
dataset-fashion-mnist. Measured: before 2.342191, after one epoch 0.966181
(kiln: 2.34219088554, 0.966180771589 on an AVX-512 machine); after five,
test error 0.2245 (kiln 0.2249)."""
import gzip, sys
import numpy as np
d = "/usr/share/datasets/fashion-mnist"
def idx(path, off):
    with gzip.open(path) as f: return np.frombuffer(f.read(), np.uint8, offset=off)
xtr = idx(d + "/train-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float32) / 255
ytr = idx(d + "/train-labels-idx1-ubyte.gz", 8).astype(np.int64)
xte = idx(d + "/t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float32) / 255
yte = idx(d + "/t10k-labels-idx1-ubyte.gz", 8).astype(np.int64)
W1 = (0.01 * np.random.RandomState(1).normal(size=(784, 100))).astype(np.float32); b1 = np.zeros(100, np.float32)
W2 = (0.01 * np.random.RandomState(1).normal(size=(100, 10))).astype(np.float32); b2 = np.zeros(10, np.float32)
def forward(x):
    h = np.maximum(x @ W1 + b1, 0); a = h @ W2 + b2
    a = a - a.max(1, keepdims=True); lse = np.log(np.exp(a).sum(1, keepdims=True))
    return h, a - lse
def test():
    costs, errs = [], []
    for i in range(0, 10000, 1024):
        _, lp = forward(xte[i:i+1024]); y = yte[i:i+1024]
        costs.append(-lp[np.arange(len(y)), y].mean() + 0.005 * ((W1**2).sum() + (W2**2).sum()))
        errs.append((lp.argmax(1) != y).mean())
    return np.mean(costs), np.mean(errs)
print("before: cost %.6f error %.4f" % test())
for epoch in range(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
    for i in range(0, 60000, 256):
        x, y = xtr[i:i+256], ytr[i:i+256]; B = len(y)
        h, lp = forward(x); g = np.exp(lp); g[np.arange(B), y] -= 1; g /= B
        gW2 = h.T @ g + 0.01 * W2; gb2 = g.sum(0); dh = (g @ W2.T) * (h > 0)
        gW1 = x.T @ dh + 0.01 * W1; gb1 = dh.sum(0)
        W1 -= 0.1 * gW1; b1 -= 0.1 * gb1; W2 -= 0.1 * gW2; b2 -= 0.1 * gb2
    print("after epoch %d: cost %.6f error %.4f" % ((epoch + 1,) + test()))
