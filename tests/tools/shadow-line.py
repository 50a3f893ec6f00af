#!/usr/bin/env python3
"""Adds or removes one line of a shadow-suite file (/etc/subuid, /etc/subgid)
under the locks shadow's own tools take, so that a test's edit is safe
beside useradd/userdel/usermod run by other tests at the same time.

    shadow-line.py add FILE LINE   exit 0: appended; 4: FILE created for it;
                                   3: LINE was there already (nothing done)
    shadow-line.py del FILE LINE [--remove-if-empty]
                                   removes one occurrence of LINE (none: 0,
                                   nothing done); --remove-if-empty: FILE too
                                   when nothing is left (an add that created it)

The locks, as `strace -f -e trace=openat,link,fcntl useradd` shows shadow
4.13 taking them: first lckpwdf(3), an fcntl (POSIX) write lock on all of
/etc/.pwd.lock, waited for (flock(1) would not do: flock(2) locks do not
exclude fcntl ones); then the file's own lock, FILE.lock made by link(2)
from FILE.PID holding our pid (a stale one, of a dead pid, removed, as
shadow does). With both held, useradd waits in lckpwdf instead of failing
on the file lock. The new content goes to FILE+ (same mode and owner) and
is renamed over FILE, as shadow writes it: a reader sees the old or the
new file, never half of one. Every other line is left as it is."""
import errno
import fcntl
import os
import sys
import time

TIMEOUT = 30.0


def lckpwdf(path="/etc/.pwd.lock"):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    end = time.monotonic() + TIMEOUT
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EAGAIN) or time.monotonic() > end:
                sys.exit(f"shadow-line: cannot lock {path}: {e}")
            time.sleep(0.05)


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def file_lock(path):
    lock, tmp = path + ".lock", f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    end = time.monotonic() + TIMEOUT
    try:
        while True:
            try:
                os.link(tmp, lock)
                return lock
            except FileExistsError:
                pass
            try:
                with open(lock) as f:
                    pid = int(f.read().strip() or "0")
                if pid > 0 and not alive(pid):
                    os.unlink(lock)  # stale: its holder is gone
                    continue
            except (FileNotFoundError, ValueError):
                continue
            if time.monotonic() > end:
                sys.exit(f"shadow-line: {lock} is held by pid {pid}")
            time.sleep(0.05)
    finally:
        os.unlink(tmp)


def replace(path, lines, st):
    new = path + "+"
    fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("".join(l + "\n" for l in lines))
        f.flush()
        os.fchown(f.fileno(), st.st_uid, st.st_gid)
        os.fchmod(f.fileno(), st.st_mode & 0o7777)
        os.fsync(f.fileno())
    os.rename(new, path)


def edit(op, path, line, remove_if_empty):
    try:
        st = os.stat(path)
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        st, lines = None, None
    if op == "add":
        if lines is not None and line in lines:
            return 3
        replace(path, (lines or []) + [line], st or os.stat_result((0o100644, 0, 0, 0, 0, 0, 0, 0, 0, 0)))
        return 0 if lines is not None else 4
    if lines is None or line not in lines:
        return 0
    lines.remove(line)
    if remove_if_empty and not lines:
        os.unlink(path)
    else:
        replace(path, lines, st)
    return 0


def main(argv):
    if len(argv) < 4 or argv[1] not in ("add", "del") or argv[4:] not in ([], ["--remove-if-empty"]):
        sys.exit(__doc__)
    op, path, line = argv[1], argv[2], argv[3]
    pwd = lckpwdf()
    lock = file_lock(path)
    try:
        return edit(op, path, line, bool(argv[4:]))
    finally:
        os.unlink(lock)
        os.close(pwd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
