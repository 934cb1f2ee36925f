#!/usr/bin/env python3
"""Side-by-side benchmark of robovault, restic and borg on one corpus, with
the machine's physical limits measured in the same run. See compare.sh.

Every tool runs the same steps on the same data; each step is timed with
/usr/bin/time (wall seconds, peak RSS). Results go to stdout and RESULTS.md.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ROBOVAULT = os.path.join(ROOT, "target", "release", "robovault")
ENV = dict(
    os.environ,
    RESTIC_PASSWORD="bench",
    BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
    BORG_RELOCATED_REPO_ACCESS_IS_OK="yes",
    BORG_PASSPHRASE="",
)


def sh(cmd, cwd=None, check=True, quiet=True):
    r = subprocess.run(cmd, cwd=cwd, env=ENV, stdout=subprocess.PIPE if quiet else None,
                       stderr=subprocess.PIPE if quiet else None, shell=isinstance(cmd, str))
    if check and r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {cmd}\n{(r.stderr or b'').decode(errors='replace')[-2000:]}")
    return r


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = os.path.abspath(args.workdir)
        self.results = {}  # (table, row, column) -> [values]

    def drop_caches(self):
        if self.args.cold:
            sh("sync; echo 3 > /proc/sys/vm/drop_caches")

    def timed(self, label, tool, cmd, cwd=None, ok_codes=(0,)):
        """Runs cmd under /usr/bin/time; records wall seconds and peak RSS."""
        self.drop_caches()
        out = os.path.join(self.work, "time.out")
        shell = isinstance(cmd, str)
        full = ["/usr/bin/time", "-f", "%e %M", "-o", out] + (["sh", "-c", cmd] if shell else cmd)
        r = subprocess.run(full, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode not in ok_codes:
            sys.exit(f"{tool} {label} failed ({r.returncode}): {cmd}\n{r.stderr.decode(errors='replace')[-3000:]}")
        wall, rss = open(out).read().split()[-2:]
        self.add("time", label, tool, float(wall))
        self.add("rss", label, tool, int(rss) / 1024.0)
        return r

    def add(self, table, row, col, value):
        self.results.setdefault((table, row, col), []).append(value)


def repo_size(path):
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for f in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def describe(root):
    """Content hash and metadata of every entry, for restore verification."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir", st.st_mode)
            else:
                h = hashlib.blake2b()
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                out[rel] = ("file", st.st_mode, st.st_mtime_ns, h.hexdigest())
    return out


def differences(a, b):
    da, db = describe(a), describe(b)
    return sum(1 for k in set(da) | set(db) if da.get(k) != db.get(k))


class Robovault:
    """robovault as a repository is made: `robovault` is the default (format
    version 2, encrypted, Argon2id at its defaults), `robovault-none` version
    2 with `--encryption none`, `robovault-v1` format version 1."""

    def __init__(self, name="robovault", create=()):
        self.name = name
        self.create = list(create)
        self.work = None

    def init(self, repo):
        # The options of a new repository only act on the first backup.
        pass

    def cache(self, work):
        self.work = work
        path = os.path.join(work, f"cache-{self.name}")
        ENV["ROBOVAULT_CACHE_DIR"] = path
        return path

    def backup(self, repo, src, n):
        return [ROBOVAULT, "backup", src, repo, "--series", "bench", "-r", "0", "--json"] + self.create

    ok_backup = (0, 1, 2, 3)

    def first_snapshot(self, repo):
        v = json.loads(sh([ROBOVAULT, "history", repo, "--json"]).stdout)
        return v[0]["snapshot"]

    def restore(self, repo, target, src):
        return [ROBOVAULT, "restore", repo, target, "--json"], target

    def restore_one(self, repo, target, src, rel, snap):
        return [ROBOVAULT, "restore", repo, target, rel, "--snapshot", snap, "--json"], None

    def check(self, repo):
        return [ROBOVAULT, "verify", repo, "--read-data"]

    def cache(self, work):
        return None


class Restic:
    name = "restic"
    ok_backup = (0,)

    def init(self, repo):
        sh(["restic", "init", "--repo", repo])

    def backup(self, repo, src, n):
        return ["restic", "backup", "--repo", repo, "--quiet", src]

    def first_snapshot(self, repo):
        v = json.loads(sh(["restic", "snapshots", "--repo", repo, "--json"]).stdout)
        return v[0]["short_id"]

    def restore(self, repo, target, src):
        return ["restic", "restore", "latest", "--repo", repo, "--target", target], target + src

    def restore_one(self, repo, target, src, rel, snap):
        return ["restic", "restore", snap, "--repo", repo, "--target", target, "--include", os.path.join(src, rel)], None

    def check(self, repo):
        return ["restic", "check", "--read-data", "--repo", repo]

    def cache(self, work):
        return os.path.join(work, "cache-restic")


class Borg:
    name = "borg"
    ok_backup = (0, 1)

    def init(self, repo):
        sh(["borg", "init", "-e", "none", repo])

    def backup(self, repo, src, n):
        return ["borg", "create", "--compression", "zstd,3", f"{repo}::s{n}", src]

    def first_snapshot(self, repo):
        return "s1"

    def restore(self, repo, target, src):
        os.makedirs(target, exist_ok=True)
        return f"cd {target} && borg extract {repo}::s3", target + src

    def restore_one(self, repo, target, src, rel, snap):
        os.makedirs(target, exist_ok=True)
        return f"cd {target} && borg extract {repo}::{snap} {os.path.join(src, rel).lstrip('/')}", None

    def check(self, repo):
        return ["borg", "check", "--verify-data", repo]

    def cache(self, work):
        return os.path.join(work, "cache-borg")


def limits(b, src, tarball):
    b.timed("stat every file", "limit", f"find {src} -printf '%s\\n' > /dev/null")
    b.timed("read every file", "limit", f"find {src} -type f -print0 | xargs -0 -n 200 -P 2 cat > /dev/null")
    b.timed("b3sum over the files", "limit", f"find {src} -type f -print0 | xargs -0 -n 500 -P 2 b3sum > /dev/null")
    b.timed("zstd -3 -T0 over a tar", "limit", f"zstd -3 -T0 -q -c {tarball} > /dev/null")
    copy = os.path.join(b.work, "cp-copy")
    shutil.rmtree(copy, ignore_errors=True)
    b.timed("cp -a", "limit", ["cp", "-a", src, copy])
    shutil.rmtree(copy, ignore_errors=True)
    b.timed("process start-up", "limit", [ROBOVAULT, "--version"])


def one_run(b, tools, corpus, n):
    src = os.path.join(b.work, "src")
    rel_one = None
    for tool in tools:
        shutil.rmtree(src, ignore_errors=True)
        sh(["cp", "-a", corpus, src])
        if rel_one is None:
            # The largest regular file under 1 MiB that the mutation leaves alone
            # is as good as any: pick one deterministically.
            candidates = sorted(p for p in describe_files(src) if os.path.getsize(os.path.join(src, p)) < 1 << 20)
            rel_one = candidates[len(candidates) // 2]
        repo = os.path.join(b.work, f"repo-{tool.name}")
        shutil.rmtree(repo, ignore_errors=True)
        cache = tool.cache(b.work)
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
        ENV["RESTIC_CACHE_DIR"] = os.path.join(b.work, "cache-restic")
        ENV["BORG_CACHE_DIR"] = os.path.join(b.work, "cache-borg")
        tool.init(repo)
        b.timed("first backup", tool.name, tool.backup(repo, src, 1), ok_codes=tool.ok_backup)
        b.add("size", "after first backup", tool.name, repo_size(repo))
        copies_before = index_copies(repo)
        b.timed("unchanged re-run", tool.name, tool.backup(repo, src, 2), ok_codes=tool.ok_backup)
        b.add("size", "after unchanged re-run", tool.name, repo_size(repo))
        if isinstance(tool, Robovault):
            new = {k: v for k, v in index_copies(repo).items() if k not in copies_before}
            b.add("size", "index copies uploaded by the unchanged re-run", tool.name, sum(new.values()))
            # One open: the Argon2id of the key file where there is one.
            b.timed("open the repository (key list / history)", tool.name,
                    [ROBOVAULT, "key", "list", repo] if not tool.create else [ROBOVAULT, "history", repo])
        sh([sys.executable, os.path.join(HERE, "mutate.py"), src, "--seed", "1"])
        b.timed("backup after 1% churn", tool.name, tool.backup(repo, src, 3), ok_codes=tool.ok_backup)
        b.add("size", "after churn backup", tool.name, repo_size(repo))
        b.add("size", "after churn backup, with the local cache", tool.name,
              repo_size(repo) + (repo_size(cache) if cache else 0))
        target = os.path.join(b.work, "restore")
        shutil.rmtree(target, ignore_errors=True)
        cmd, restored = tool.restore(repo, target, src)
        b.timed("full restore", tool.name, cmd, ok_codes=(0, 1, 2, 3))
        b.add("verify", "restore differences", tool.name, differences(src, restored))
        shutil.rmtree(target, ignore_errors=True)
        one = os.path.join(b.work, "one")
        shutil.rmtree(one, ignore_errors=True)
        cmd, _ = tool.restore_one(repo, one, src, rel_one, tool.first_snapshot(repo))
        b.timed("one file from an old snapshot", tool.name, cmd, ok_codes=(0, 1, 2, 3))
        shutil.rmtree(one, ignore_errors=True)
        check = tool.check(repo)
        if check:
            b.timed("read-back check", tool.name, check)
            b.add("size", "read-back throughput, MB/s", tool.name, repo_size(repo) / 1e6 / b.results[("time", "read-back check", tool.name)][-1])
        shutil.rmtree(repo, ignore_errors=True)
    shutil.rmtree(src, ignore_errors=True)


def index_copies(repo):
    """The index copies of a robovault repository, by name, with their sizes."""
    d = os.path.join(repo, "index")
    if not os.path.isdir(d):
        return {}
    return {n: os.path.getsize(os.path.join(d, n)) for n in os.listdir(d)}


def describe_files(root):
    out = []
    for dirpath, _, filenames in os.walk(root):
        for f in filenames:
            p = os.path.join(dirpath, f)
            if os.path.isfile(p) and not os.path.islink(p) and "bench-added" not in f:
                out.append(os.path.relpath(p, root))
    return out


def fmt_secs(vals):
    if not vals:
        return "n/a"
    m = statistics.median(vals)
    return f"{m:.2f} ({min(vals):.2f}–{max(vals):.2f})"


def fmt_mb(vals):
    return f"{statistics.median(vals):.0f}" if vals else "n/a"


def ratio(a, b):
    if not a or not b:
        return "n/a"
    return f"{statistics.median(a) / statistics.median(b):.2f}×"


STEPS = ["first backup", "unchanged re-run", "backup after 1% churn", "full restore",
         "one file from an old snapshot", "read-back check", "open the repository (key list / history)"]
LIMITS = ["stat every file", "read every file", "b3sum over the files", "zstd -3 -T0 over a tar", "cp -a", "process start-up"]


def report(b, tools, corpus_desc):
    R = b.results
    get = lambda t, row, col: R.get((t, row, col), [])
    names = [t.name for t in tools]
    lines = []
    lines.append("| step | " + " | ".join(f"{n} s" for n in names) + " | robovault / restic | robovault / borg |")
    lines.append("|---|" + "---|" * (len(names) + 2))
    for s in STEPS:
        cells = [fmt_secs(get("time", s, n)) for n in names]
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {ratio(get('time', s, 'robovault'), get('time', s, 'restic'))}"
                     f" | {ratio(get('time', s, 'robovault'), get('time', s, 'borg'))} |")
    lines.append("")
    lines.append("| peak RSS, MiB | " + " | ".join(names) + " | robovault / restic |")
    lines.append("|---|" + "---|" * (len(names) + 1))
    for s in STEPS:
        cells = [fmt_mb(get("rss", s, n)) for n in names]
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {ratio(get('rss', s, 'robovault'), get('rss', s, 'restic'))} |")
    lines.append("")
    lines.append("| repository size, MB | " + " | ".join(names) + " | robovault / borg |")
    lines.append("|---|" + "---|" * (len(names) + 1))
    for row in ["after first backup", "after unchanged re-run", "after churn backup",
                "after churn backup, with the local cache"]:
        cells = [f"{statistics.median(get('size', row, n)) / 1e6:.1f}" if get('size', row, n) else "n/a" for n in names]
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {ratio(get('size', row, 'robovault'), get('size', row, 'borg'))} |")
    lines.append("")
    kb = [f"{statistics.median(get('size', 'index copies uploaded by the unchanged re-run', n)) / 1e3:.1f}"
          if get('size', 'index copies uploaded by the unchanged re-run', n) else "n/a" for n in names]
    lines.append("| index copies uploaded by an unchanged re-run, kB | " + " | ".join(kb) + " |")
    lines.append("|---|" + "---|" * len(names))
    if "robovault-none" in names or "robovault-v1" in names:
        lines.append("")
        lines.append("| cost of encryption (robovault / …), the open's Argon2id left out | " +
                     " | ".join(n for n in ["robovault-none", "robovault-v1"] if n in names) + " |")
        lines.append("|---|" + "---|" * len([n for n in ["robovault-none", "robovault-v1"] if n in names]))
        for st in STEPS[:-1]:
            lines.append(f"| {st} | " + " | ".join(ratio(get('time', st, 'robovault'), get('time', st, n))
                                                   for n in ["robovault-none", "robovault-v1"] if n in names) + " |")
    thr = [f"{statistics.median(get('size', 'read-back throughput, MB/s', n)):.0f}" if get('size', 'read-back throughput, MB/s', n) else "n/a" for n in names]
    lines.append("")
    lines.append("| read-back check throughput, MB/s of repository | " + " | ".join(thr) + " |")
    lines.append("|---|" + "---|" * len(names))
    lines.append("")
    lines.append("| restore verified against the source (entries differing) | " + " | ".join(
        str(max(get("verify", "restore differences", n))) if get("verify", "restore differences", n) else "n/a" for n in names) + " |")
    lines.append("|---|" + "---|" * len(names))
    lines.append("")
    lines.append("| physical limit | seconds (median, min–max) |")
    lines.append("|---|---|")
    for s in LIMITS:
        lines.append(f"| {s} | {fmt_secs(get('time', s, 'limit'))} |")
    floor = [a + b for a, b in zip(get("time", "stat every file", "limit"), get("time", "process start-up", "limit"))]
    lines.append(f"| floor of an unchanged re-run (stat + start-up) | {fmt_secs(floor)} |")
    rv = lambda s: get("time", s, "robovault")
    lines.append("")
    lines.append("| robovault against the limits | ratio |")
    lines.append("|---|---|")
    lines.append(f"| first backup / zstd -3 -T0 | {ratio(rv('first backup'), get('time', 'zstd -3 -T0 over a tar', 'limit'))} |")
    lines.append(f"| full restore / cp -a | {ratio(rv('full restore'), get('time', 'cp -a', 'limit'))} |")
    lines.append(f"| unchanged re-run / floor | {ratio(rv('unchanged re-run'), floor)} |")
    return "\n".join(lines)


def machine():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    ver = lambda cmd: sh(cmd, check=False).stdout.decode(errors="replace").splitlines()[0] if shutil.which(cmd[0]) or os.path.exists(cmd[0]) else "missing"
    return [
        f"- machine: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}",
        f"- robovault: {ver([ROBOVAULT, '--version'])}; {ver(['restic', 'version'])}; {ver(['borg', '--version'])}",
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default="/tmp/robovault-bench")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--files", type=int, default=50000)
    ap.add_argument("--bytes", type=int, default=1 << 30)
    ap.add_argument("--big-db", type=int, default=300)
    ap.add_argument("--tools", default="robovault,robovault-none,robovault-v1,restic,borg")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    a = ap.parse_args()
    b = Bench(a)
    os.makedirs(b.work, exist_ok=True)
    corpus = os.path.join(b.work, "corpus")
    if not os.path.exists(corpus):
        sh([sys.executable, os.path.join(HERE, "corpus.py"), corpus, "--files", str(a.files), "--bytes", str(a.bytes),
            "--big-db", str(a.big_db)], quiet=False)
    tarball = os.path.join(b.work, "corpus.tar")
    if not os.path.exists(tarball):
        sh(["tar", "cf", tarball, "-C", b.work, "corpus"])
    entries = sum(len(d) + len(f) for _, d, f in os.walk(corpus))
    size = repo_size(corpus)
    corpus_desc = f"{entries} entries, {size / 1e9:.2f} GB (files from /usr/share and /usr/lib, symlinks kept, plus a {a.big_db} MB SQLite database of their text)"
    all_tools = {"robovault": Robovault(), "robovault-none": Robovault("robovault-none", ["--encryption", "none"]),
                 "robovault-v1": Robovault("robovault-v1", ["--format-version", "1"]),
                 "restic": Restic(), "borg": Borg()}
    # The password of the encrypted repositories, from a file as a nightly
    # job would give it.
    pw = os.path.join(b.work, "password")
    with open(pw, "w") as f:
        f.write("benchmark password\n")
    os.chmod(pw, 0o600)
    ENV["ROBOVAULT_PASSWORD_FILE"] = pw
    tools = [all_tools[t] for t in a.tools.split(",")]
    sh(["cp", "-a", corpus, os.path.join(b.work, "src")])
    for n in range(a.runs):
        print(f"run {n + 1} of {a.runs}", file=sys.stderr)
        limits(b, os.path.join(b.work, "src"), tarball)
        one_run(b, tools, corpus, n)
        if n + 1 < a.runs:
            sh(["cp", "-a", corpus, os.path.join(b.work, "src")])
    table = report(b, tools, corpus_desc)
    mode = "cold page cache (dropped before every step)" if a.cold else "warm page cache"
    head = [
        f"## Side by side with restic and borg ({'cold' if a.cold else 'warm'} page cache, benches/compare.sh)",
        "",
        f"Last full run: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %z')}, {a.runs} runs, {mode}.",
        f"Corpus: {corpus_desc}; mutation: benches/mutate.py (1% of files edited, 300 added, 300 deleted, in-place edits in large files).",
        "Figures are medians with min–max. robovault: format version 2 encrypted (the default; Argon2id 256 MiB, 3 passes, paid once per command that opens the repository), `robovault-none` version 2 with `--encryption none`, `robovault-v1` format version 1; restic with its default compression (encrypted), borg with `--compression zstd,3`, no encryption.",
        "",
    ] + machine() + [""]
    text = "\n".join(head) + "\n" + table + "\n"
    print(text)
    section = "cold" if a.cold else "warm"
    write_results(a.results, section, text)


def write_results(path, section, text):
    """Keeps one section per page-cache mode in RESULTS.md."""
    marker_start = f"<!-- compare.py {section} start -->"
    marker_end = f"<!-- compare.py {section} end -->"
    old = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    block = f"{marker_start}\n{text}{marker_end}\n"
    if marker_start in old:
        before = old.split(marker_start)[0]
        after = old.split(marker_end, 1)[1].lstrip("\n")
        new = before + block + after
    else:
        new = old.rstrip("\n") + "\n\n" + block
    open(path, "w").write(new)


if __name__ == "__main__":
    main()
