"""Which processes a test started, and which TCP sockets they listen on: read from /proc.

A test must watch only its own processes (never the whole machine: another program, or the
sibling xdist worker, would turn it red). Its processes are found by pid, three ways:
- descendants: every process whose parent chain leads to a root pid the test started;
- a tag: a unique environment variable the test sets for what it starts. Every process Ray or a
  pool starts inherits it, even one that daemonised (re-parented to init), and /proc/PID/environ
  shows a process's environment at its start, so the test's own process is never matched. But
  a process that renames itself (Ray's, through setproctitle) may overwrite that area;
- a folder: every process holding a file open in a folder the test made (each Ray process has
  its stdout and stderr in the instance's folder).
Linux only (/proc); the tests that use it skip elsewhere.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import threading
import time
import uuid
from pathlib import Path

PROC = Path("/proc")


TAG = "PAIRZOO_TEST_PROCESS_TAG"


def new_tag() -> tuple[str, str]:
    """(name, value) of an environment variable that marks one test's processes."""
    return TAG, uuid.uuid4().hex


def _pids() -> list[int]:
    return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()]


def _parent(pid: int) -> int | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # field 4; the name (field 2) may hold spaces


def alive(pid: int) -> bool:
    try:
        state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's wait is missing


def descendants(root: int) -> set[int]:
    """Every live process below `root` (not `root` itself)."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        parent = _parent(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return {pid for pid in found if alive(pid)}


def tagged(tag: tuple[str, str]) -> set[int]:
    """Every live process whose starting environment holds the tag."""
    marker = f"{tag[0]}={tag[1]}".encode()
    found = set()
    for pid in _pids():
        try:
            environ = (PROC / str(pid) / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") and alive(pid):
            found.add(pid)
    return found


def holding(folder: Path) -> set[int]:
    """Every live process with a file open in `folder` (or below it)."""
    inside = os.path.realpath(folder) + os.sep
    found = set()
    for pid in _pids():
        try:
            fds = list((PROC / str(pid) / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(fd).startswith(inside):
                    found.add(pid)
                    break
    return {pid for pid in found if alive(pid)}


def _listening_inodes() -> dict[int, tuple[str, int]]:
    """inode -> (address, port) of every listening TCP socket in this network namespace."""
    found = {}
    for table in ("tcp", "tcp6"):
        path = PROC / "net" / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                address, port = fields[1].split(":")
                found[int(fields[9])] = (_address(address), int(port, 16))
    return found


def _address(hex_address: str) -> str:
    """/proc's hex address (32-bit words in host order, little-endian here) as text."""
    raw = b"".join(bytes.fromhex(hex_address[i:i + 8])[::-1]
                   for i in range(0, len(hex_address), 8))
    return str(ipaddress.ip_address(raw))


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        fds = list((PROC / str(pid) / "fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def listening(pids: set[int]) -> set[tuple[int, str, int]]:
    """(pid, address, port) of every TCP socket these processes listen on."""
    table = _listening_inodes()
    return {(pid, *table[inode]) for pid in pids for inode in _socket_inodes(pid)
            if inode in table}


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None
                              and ip.ipv4_mapped.is_loopback)


def wait_until_gone(find, timeout: float) -> set[int]:
    """Poll `find()` (a set of live pids) until it is empty or `timeout` seconds pass;
    returns what is still alive."""
    deadline = time.monotonic() + timeout
    while True:
        alive = find()
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def describe(pids: set[int]) -> str:
    """pid: command line, for a failure message."""
    lines = []
    for pid in sorted(pids):
        try:
            command = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            command = b"?"
        lines.append(f"{pid}: {command.decode(errors='replace')[:120]}")
    return "; ".join(lines)


class SocketWatch:
    """Every listening socket that the processes `find()` returns open while the block runs,
    polled in a thread: (pid, address, port) in `seen`."""

    def __init__(self, find, interval: float = 0.1):
        self.find, self.interval = find, interval
        self.seen: set[tuple[int, str, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            self.seen |= listening(self.find())
            self._stop.wait(self.interval)
        self.seen |= listening(self.find())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def beyond_loopback(self) -> set[tuple[int, str, int]]:
        return {(pid, address, port) for pid, address, port in self.seen
                if not is_loopback(address)}
