#!/usr/bin/env python3
"""gc on a repository with history: N snapshots of a corpus with 1% churn per
run, then forget --keep-last K and gc, each timed with peak RSS.

usage: gc.py [--snapshots 30] [--keep 10] [--corpus DIR] [--workdir DIR] [--results FILE]

The corpus defaults to compare.sh's (built by corpus.py if missing).
"""
import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROBOVAULT = os.path.join(os.path.dirname(HERE), "target", "release", "robovault")


def timed(cmd, ok=(0, 1, 2, 3)):
    out = "/tmp/gc-bench-time.out"
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", out] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode not in ok:
        sys.exit(f"failed ({r.returncode}): {cmd}\n{r.stderr.decode()[-2000:]}")
    wall, rss = open(out).read().split()[-2:]
    return float(wall), int(rss) / 1024


def size(path):
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(path) for f in fs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapshots", type=int, default=30)
    ap.add_argument("--keep", type=int, default=10)
    ap.add_argument("--corpus", default="/tmp/robovault-bench/corpus")
    ap.add_argument("--workdir", default="/tmp/robovault-gc-bench")
    ap.add_argument("--results", default=None)
    a = ap.parse_args()
    if not os.path.exists(a.corpus):
        subprocess.run([sys.executable, os.path.join(HERE, "corpus.py"), a.corpus, "--big-db", "300"], check=True)
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    src, repo = os.path.join(a.workdir, "src"), os.path.join(a.workdir, "repo")
    subprocess.run(["cp", "-a", a.corpus, src], check=True)
    backups = []
    for i in range(a.snapshots):
        if i:
            subprocess.run([sys.executable, os.path.join(HERE, "mutate.py"), src, "--seed", str(i)], check=True,
                           stdout=subprocess.DEVNULL)
        backups.append(timed([ROBOVAULT, "backup", src, repo, "--series", "gc", "--json"]))
    before = size(repo)
    forget = timed([ROBOVAULT, "forget", repo, "--keep-last", str(a.keep)], ok=(0,))
    gc = timed([ROBOVAULT, "gc", repo], ok=(0,))
    after = size(repo)
    verify = timed([ROBOVAULT, "verify", repo, "--read-data"], ok=(0,))
    inc = sorted(b[0] for b in backups[1:])
    rows = [
        f"gc benchmark: {a.snapshots} snapshots of {a.corpus} with benches/mutate.py churn between runs; forget --keep-last {a.keep}; gc.",
        "",
        "| step | seconds | peak RSS MiB |",
        "|---|---|---|",
        f"| first backup | {backups[0][0]:.1f} | {backups[0][1]:.0f} |",
        f"| incremental backups (median of {len(inc)}) | {inc[len(inc) // 2]:.1f} | {max(b[1] for b in backups[1:]):.0f} (max) |",
        f"| forget --keep-last {a.keep} | {forget[0]:.2f} | {forget[1]:.0f} |",
        f"| gc | {gc[0]:.1f} | {gc[1]:.0f} |",
        f"| verify --read-data after gc | {verify[0]:.1f} ({after / 1e6 / verify[0]:.0f} MB/s) | {verify[1]:.0f} |",
        "",
        f"Repository: {before / 1e6:.0f} MB before gc, {after / 1e6:.0f} MB after.",
        "",
    ]
    text = "\n".join(rows)
    print(text)
    if a.results:
        with open(a.results, "a") as f:
            f.write("\n" + text)
    shutil.rmtree(a.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
