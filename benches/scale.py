#!/usr/bin/env python3
"""Memory and time of robovault on generated trees of many small files.

usage: scale.py [--sizes 100000,300000,1000000] [--dirs 100000] [--workdir DIR] [--results FILE] [--no-restore]

For each size N: a tree of N small files (1,000 per directory) is generated
deterministically, then a first backup, an unchanged re-run and a full
restore run under /usr/bin/time. Then the same for a tree of --dirs
directories (100 per parent, one small file in each). Peak RSS that does not grow with N on the
unchanged re-run shows that memory does not grow with unchanged files.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROBOVAULT = os.environ.get("ROBOVAULT") or os.path.join(os.path.dirname(HERE), "target", "release", "robovault")


def generate(root, n):
    rng = random.Random(n)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"backup", b"night", b"file", b"vault"]
    for i in range(n):
        d = os.path.join(root, f"d{i // 100000:02d}", f"d{i // 1000:04d}")
        if i % 1000 == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:07d}.txt"), "wb") as f:
            f.write(b" ".join(rng.choice(words) for _ in range(rng.randrange(5, 60))))


def generate_dirs(root, n):
    for i in range(n):
        d = os.path.join(root, f"p{i // 100:04d}", f"d{i:06d}")
        os.makedirs(d)
        with open(os.path.join(d, "f.txt"), "wb") as f:
            f.write(b"directory %d" % i)


def timed(cmd):
    out = "/tmp/scale-time.out"
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", out] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode >= 8:
        sys.exit(f"failed: {cmd}\n{r.stderr.decode()[-2000:]}")
    wall, rss = open(out).read().split()[-2:]
    return float(wall), int(rss) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,300000,1000000")
    ap.add_argument("--dirs", default="100000")
    ap.add_argument("--workdir", default="/tmp/robovault-scale")
    ap.add_argument("--results", default=None)
    ap.add_argument("--no-restore", action="store_true", help="time the backups only")
    a = ap.parse_args()
    rows = ["| tree | first backup s | first backup RSS MiB | unchanged re-run s | unchanged re-run RSS MiB | restore s | restore RSS MiB | index MB |",
            "|---|---|---|---|---|---|---|---|"]
    trees = [(f"{n} files", n, generate) for n in [int(x) for x in a.sizes.split(",") if x]]
    trees += [(f"{n} dirs", n, generate_dirs) for n in [int(x) for x in a.dirs.split(",") if x]]
    for label, n, gen in trees:
        work = os.path.join(a.workdir, label.replace(" ", "-"))
        shutil.rmtree(work, ignore_errors=True)
        src, repo, out = (os.path.join(work, x) for x in ("src", "repo", "out"))
        gen(src, n)
        first = timed([ROBOVAULT, "backup", src, repo, "--json"])
        again = timed([ROBOVAULT, "backup", src, repo, "--json"])
        if a.no_restore:
            rest = (float("nan"), float("nan"))
        else:
            rest = timed([ROBOVAULT, "restore", repo, out, "--json"])
            restored = sum(len(files) for _, _, files in os.walk(out))
            if restored != n:
                sys.exit(f"{label}: the restore holds {restored} files, not {n}")
        index = os.path.getsize(os.path.join(repo, "index.sqlite")) / 1e6
        rows.append(f"| {label} | {first[0]:.1f} | {first[1]:.0f} | {again[0]:.1f} | {again[1]:.0f} | {rest[0]:.1f} | {rest[1]:.0f} | {index:.0f} |")
        print(rows[-1], flush=True)
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(rows) + "\n"
    print(text)
    if a.results:
        with open(a.results, "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
