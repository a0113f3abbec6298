"""What the fork server sets up once for every run: its own network and mount namespaces,
child-subreaping, and the core it keeps to. Standard library only (the server runs as a lean `python -I -S`)."""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 1, 2, 4, 0x4000, 0x40000
# Top-level directories a program may read; everything else is hidden under an empty tmpfs.
READABLE = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "proc", "dev", "sys", "tmp"}
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")


def private_filesystem() -> bool:
    """Give the server (and so every child) its own mount namespace: fresh tmpfs on the
    world-writable scratch directories and an empty read-only tmpfs over every top-level
    directory outside `READABLE` (/etc, /home, /root, /var, project directories...)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0:
            return False
        if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            return False
        for path in SCRATCH:
            if os.path.isdir(path):
                libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=1777,size=512m")
        for name in os.listdir("/"):
            full = "/" + name
            if name in READABLE or not os.path.isdir(full) or os.path.islink(full):
                continue
            if libc.mount(b"tmpfs", full.encode(), b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, b"mode=755,size=4k") != 0:
                return False
        return True
    except (OSError, AttributeError):
        return False


def set_child_subreaper() -> bool:
    try:
        return ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def unshare_network() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.unshare(CLONE_NEWNET) == 0
    except (OSError, AttributeError):
        return False


def place(cpu: str) -> None:
    """Keep the server, and so every process it makes, on core `cpu` (see
    `payoff.engine.worker.place_sandbox`), where that is a core this process may use."""
    if cpu.isdigit() and int(cpu) in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {int(cpu)})
