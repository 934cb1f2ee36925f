#!/usr/bin/env python3
"""The S3 rows of benches/RESULTS.md: robovault and restic on one gateway.

usage: s3.py --state DIR [--runs N] [--workdir DIR] [--files N] [--bytes B]

Each run uses fresh prefixes (a fresh repository) for both tools, a fresh
robovault cache, and restores into fresh directories; the restored trees are
compared with the source. Medians of the runs are written into the
"## S3" section of benches/RESULTS.md (the rest of the file is kept).
"""
import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RV = os.path.join(ROOT, "target", "release", "robovault")


def timed(cmd, env):
    """Runs cmd under GNU time; returns (seconds, peak RSS MiB)."""
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, env=env, capture_output=True, text=True)
    dt = time.monotonic() - t0
    if p.returncode not in range(0, 8):
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    rss = int(p.stderr.strip().splitlines()[-1]) / 1024
    return dt, rss


def same(a, b):
    r = subprocess.run(["diff", "-r", "--no-dereference", a, b], capture_output=True)
    return r.returncode == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/robovault-bench-s3")
    ap.add_argument("--files", type=int, default=50000)
    ap.add_argument("--bytes", type=int, default=1 << 30)
    a = ap.parse_args()
    env = dict(os.environ)
    env["ROBOVAULT_S3_ALLOW_HTTP"] = "1"
    env["RESTIC_PASSWORD"] = "bench"
    bucket = env["ROBOVAULT_TEST_S3_BUCKET"]
    endpoint = env["AWS_ENDPOINT_URL"]
    os.makedirs(a.workdir, exist_ok=True)
    corpus = os.path.join(a.workdir, "corpus")
    if not os.path.isdir(corpus):
        subprocess.run([sys.executable, os.path.join(ROOT, "benches", "corpus.py"), corpus,
                        "--files", str(a.files), "--bytes", str(a.bytes)], check=True)
    size = sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(corpus) for f in fs)
    files = sum(len(fs) for _, _, fs in os.walk(corpus))
    rows = {k: [] for k in ["rv_backup", "rv_restore", "re_backup", "re_restore"]}
    rss = {k: [] for k in rows}
    for run in range(a.runs):
        # A fresh gateway each run: the memstore OSD holds 2 GiB, and both
        # tools start from an empty bucket.
        subprocess.run([os.path.join(ROOT, ".ci", "ceph-down"), a.state], check=True)
        subprocess.run([os.path.join(ROOT, ".ci", "ceph-up"), a.state], check=True, capture_output=True)
        tag = f"{random.getrandbits(48):012x}"
        rv_repo = f"s3://{bucket}/bench/rv-{tag}"
        re_repo = f"s3:{endpoint}/{bucket}/bench/restic-{tag}"
        cache = os.path.join(a.workdir, f"cache-{tag}")
        e = dict(env, ROBOVAULT_CACHE_DIR=cache)
        t, m = timed([RV, "backup", corpus, rv_repo, "--series", "bench", "--np", "--njh", "--nfl", "--ndl"], e)
        rows["rv_backup"].append(t); rss["rv_backup"].append(m)
        shutil.rmtree(cache)  # restore as a fresh machine: index from the store
        out = os.path.join(a.workdir, f"rv-out-{tag}")
        t, m = timed([RV, "restore", rv_repo, out, "--np", "--njh", "--nfl", "--ndl"], e)
        rows["rv_restore"].append(t); rss["rv_restore"].append(m)
        assert same(corpus, out), "robovault restore differs"
        shutil.rmtree(out); shutil.rmtree(cache, ignore_errors=True)
        subprocess.run(["restic", "-r", re_repo, "init", "-q"], env=env, check=True, capture_output=True)
        t, m = timed(["restic", "-r", re_repo, "backup", "-q", corpus], env)
        rows["re_backup"].append(t); rss["re_backup"].append(m)
        out = os.path.join(a.workdir, f"re-out-{tag}")
        t, m = timed(["restic", "-r", re_repo, "restore", "latest", "-q", "--target", out], env)
        rows["re_restore"].append(t); rss["re_restore"].append(m)
        assert same(corpus, os.path.join(out, corpus.lstrip("/"))), "restic restore differs"
        shutil.rmtree(out)
    med = {k: statistics.median(v) for k, v in rows.items()}
    mrss = {k: statistics.median(v) for k, v in rss.items()}
    section = [
        "## S3: the loopback Ceph gateway (one node, memstore OSD)",
        "",
        f"Corpus: {files} files, {size / 1e9:.2f} GB. Medians of {a.runs} runs, each into fresh prefixes; "
        "robovault restores with an empty cache (the index comes from the bucket). Both restores verified "
        "against the source.",
        "",
        "| Step | robovault | restic | robovault / restic |",
        "|---|---|---|---|",
        f"| first backup | {med['rv_backup']:.2f} s, {mrss['rv_backup']:.0f} MiB | {med['re_backup']:.2f} s, "
        f"{mrss['re_backup']:.0f} MiB | {med['rv_backup'] / med['re_backup']:.2f}x |",
        f"| full restore | {med['rv_restore']:.2f} s, {mrss['rv_restore']:.0f} MiB | {med['re_restore']:.2f} s, "
        f"{mrss['re_restore']:.0f} MiB | {med['rv_restore'] / med['re_restore']:.2f}x |",
        "",
    ]
    path = os.path.join(ROOT, "benches", "RESULTS.md")
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    text = re.sub(r"\n## S3:.*?(?=\n## |\Z)", "", text, flags=re.S).rstrip("\n") + "\n\n" + "\n".join(section)
    open(path, "w").write(text)
    print("\n".join(section))


if __name__ == "__main__":
    main()
