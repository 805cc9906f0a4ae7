"""Who holds a TCP port? Best effort, Linux /proc only, used on the error path."""
from __future__ import annotations

import os
from typing import Optional, Tuple

__all__ = ["find_port_holder"]


def _listening_inodes(port: int) -> set:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle, None)
                for line in handle:
                    fields = line.split()
                    if len(fields) < 10:
                        continue
                    local, state, inode = fields[1], fields[3], fields[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except OSError:
            continue
    return inodes


def find_port_holder(port: int) -> Optional[Tuple[int, str]]:
    """``(pid, command line)`` of a process listening on ``port``, if visible."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    targets = {"socket:[%s]" % inode for inode in inodes}
    try:
        pids = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return None
    for pid in pids:
        fd_dir = "/proc/%s/fd" % pid
        try:
            for fd in os.listdir(fd_dir):
                try:
                    if os.readlink(os.path.join(fd_dir, fd)) in targets:
                        return int(pid), _cmdline(pid)
                except OSError:
                    continue
        except OSError:
            continue
    return None


def _cmdline(pid: str) -> str:
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return "?"
