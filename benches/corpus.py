#!/usr/bin/env python3
"""Builds a benchmark corpus deterministically from real files on the machine.

usage: corpus.py DEST [--files N] [--bytes B] [--big-db MB]

Takes regular files and symlinks from /usr/share and /usr/lib in sorted path
order (files over 64 MiB skipped) until N entries or B bytes, copies them with
metadata, and optionally adds an SQLite database of about MB megabytes built
from the corpus's own text. The same machine gives the same corpus.
"""
import argparse
import os
import shutil
import sqlite3
import sys


def candidates(roots):
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                yield os.path.join(dirpath, name)


def build(dest, max_files, max_bytes):
    count = size = 0
    for src in candidates(["/usr/share", "/usr/lib"]):
        try:
            st = os.lstat(src)
        except OSError:
            continue
        import stat as S
        if S.S_ISREG(st.st_mode):
            if st.st_size > 64 << 20 or not os.access(src, os.R_OK):
                continue
        elif not S.S_ISLNK(st.st_mode):
            continue
        target = os.path.join(dest, src.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            if S.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), target)
            else:
                shutil.copy2(src, target)
        except OSError:
            continue
        count += 1
        size += st.st_size if S.S_ISREG(st.st_mode) else 0
        if count >= max_files or size >= max_bytes:
            break
    return count, size


def big_db(dest, megabytes):
    """An SQLite database of real text: every line of the corpus's text files."""
    path = os.path.join(dest, "data.sqlite")
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE lines (id INTEGER PRIMARY KEY, file TEXT, n INTEGER, line TEXT)")
    limit = megabytes << 20
    total = 0
    rows = []
    while total < limit:
        grew = False
        for f in candidates([dest]):
            if f == path or not f.endswith((".txt", ".py", ".pm", ".h", ".c", ".html", ".xml", ".json", ".md", ".conf", ".pl", ".sh")):
                continue
            try:
                with open(f, "r", errors="replace") as fh:
                    for n, line in enumerate(fh):
                        rows.append((f, n, line))
                        total += len(line) + len(f) + 16
                        grew = True
            except OSError:
                continue
            if len(rows) > 50000:
                db.executemany("INSERT INTO lines (file, n, line) VALUES (?, ?, ?)", rows)
                rows.clear()
            if total >= limit:
                break
        if not grew:
            break
    db.executemany("INSERT INTO lines (file, n, line) VALUES (?, ?, ?)", rows)
    db.commit()
    db.close()
    os.utime(path, (1700000000, 1700000000))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dest")
    p.add_argument("--files", type=int, default=50000)
    p.add_argument("--bytes", type=int, default=1 << 30)
    p.add_argument("--big-db", type=int, default=0)
    a = p.parse_args()
    if os.path.exists(a.dest):
        sys.exit(f"{a.dest} exists; remove it first")
    os.makedirs(a.dest)
    n, size = build(a.dest, a.files, a.bytes)
    if a.big_db:
        big_db(a.dest, a.big_db)
    print(f"corpus {a.dest}: {n} entries, {size} bytes in files", file=sys.stderr)


if __name__ == "__main__":
    main()
