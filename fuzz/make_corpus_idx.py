#!/usr/bin/env python3
"""Write the seed corpus of fuzz_idx into fuzz/corpus/idx/: small IDX files,
valid and broken, plain and gzipped. The files are committed; run this again
only to change them (it is deterministic: gzip headers carry no time)."""
import gzip, os, struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "idx")

def idx(magic, dims, data=None):
    n = 1
    for d in dims:
        n *= d
    if data is None:
        data = bytes((k * 37 + 11) % 256 for k in range(n))
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + data

def gz(b):
    return gzip.compress(b, mtime=0)

images = idx(0x803, [4, 2, 3])
labels = idx(0x801, [5], bytes([0, 9, 3, 7, 1]))
files = {
    "images_4x2x3.idx3": images,
    "images_4x2x3.idx3.gz": gz(images),
    "labels_5.idx1": labels,
    "labels_5.idx1.gz": gz(labels),
    "labels_two_members.idx1.gz": gz(labels[:6]) + gz(labels[6:]),
    "empty": b"",
    "magic_only.idx1": labels[:4],
    "truncated_header.idx3": images[:10],
    "truncated_data.idx3.gz": gz(images[:20]),
    "trailing_junk.idx1": labels + b"JUNK",
    "junk_after_gzip.idx1.gz": gz(labels) + b"JUNK",
    "zero_dim.idx3": idx(0x803, [4, 0, 3], b""),
    "huge_claim.idx3": idx(0x803, [0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], b""),
    "claim_1g.idx3.gz": gz(idx(0x803, [1 << 10, 1 << 10, 1 << 10], b"")),
    "wrong_magic.idx3": idx(0x804, [4, 1, 2, 3]),
    "float_type.idx3": idx(0xD03, [1, 1, 1], b"\0\0\0\0"),
    "bad_crc.idx1.gz": (lambda b: b[:-8] + bytes([b[-8] ^ 0x5A]) + b[-7:])(gz(labels)),
    "cut_gzip.idx3.gz": gz(images)[:-12],
    "gzip_magic_only.gz": b"\x1f\x8b",
}
os.makedirs(OUT, exist_ok=True)
for name, data in files.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print(f"{len(files)} files in {OUT}")
