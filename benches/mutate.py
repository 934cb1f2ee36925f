#!/usr/bin/env python3
"""Applies the benchmark's deterministic mutation to a corpus copy.

usage: mutate.py DIR [--seed N]

About 1% of regular files are edited (a few bytes changed, or a line
appended), a few hundred files added and a few hundred deleted, and small
in-place edits (same size) land inside every file over 64 MiB.
"""
import argparse
import os
import random
import stat


def files(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                out.append((p, st.st_size))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    all_files = files(a.dir)
    large = [p for p, size in all_files if size > 64 << 20]
    small = [(p, size) for p, size in all_files if size <= 64 << 20]
    edited = rng.sample(small, max(1, len(small) // 100))
    for p, size in edited:
        os.chmod(p, os.stat(p).st_mode | 0o200)
        with open(p, "r+b") as f:
            if size > 16 and rng.random() < 0.5:
                f.seek(rng.randrange(size - 8))
                f.write(rng.randbytes(8))
            else:
                f.seek(0, 2)
                f.write(b"\nedited by the benchmark mutation\n")
    edited_paths = {p for p, _ in edited}
    remaining = [p for p, _ in small if p not in edited_paths]
    for p in rng.sample(remaining, min(300, len(remaining))):
        os.remove(p)
    dirs = sorted({os.path.dirname(p) for p, _ in small})
    for i in range(300):
        d = rng.choice(dirs)
        with open(os.path.join(d, f"bench-added-{i}.txt"), "wb") as f:
            f.write(rng.randbytes(rng.randrange(100, 20000)))
    for p in large:
        size = os.path.getsize(p)
        st = os.stat(p)
        with open(p, "r+b") as f:
            for _ in range(20):
                f.seek(rng.randrange(size - 4096))
                f.write(rng.randbytes(rng.randrange(16, 4096)))
        # Keep the size; move the mtime so every tool notices.
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    print(f"mutated {a.dir}: {len(edited)} edited, 300 deleted, 300 added, {len(large)} large files edited in place")


if __name__ == "__main__":
    main()
