"""Whether a Keyward server runs on a data directory: a lock file that a running server holds.

The gunicorn master takes a shared ``flock`` on ``<data dir>/server.lock`` as it starts; its
workers inherit the open file through ``fork``, so the lock lasts as long as any of them lives,
even if the master was killed. Several servers may share a data directory, hence a shared lock.
A restore takes the exclusive lock without waiting: it fails while a server holds the file, and a
server starting during the restore waits for it to finish. The kernel drops the lock of a process
that dies, so a crash never leaves a stale one behind.
"""

import fcntl
import os
from pathlib import Path

LOCK_FILE = "server.lock"


class ServerRunning(Exception):
    """A server holds the data directory's lock."""


def _open(data_dir) -> int:
    return os.open(Path(data_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def hold_for_server(data_dir, waiting=None) -> int:
    """Take the shared lock for this process and its children, for as long as they live; calls
    ``waiting()`` once first if a restore holds the file. Returns the descriptor, kept open."""
    descriptor = _open(data_dir)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        if waiting is not None:
            waiting()
        fcntl.flock(descriptor, fcntl.LOCK_SH)
    return descriptor


class NoServer:
    """Hold the exclusive lock while the database is replaced; raises ServerRunning on entry when
    a server holds the lock."""

    def __init__(self, data_dir):
        self.path = Path(data_dir) / LOCK_FILE

    def __enter__(self):
        self._descriptor = _open(self.path.parent)
        try:
            fcntl.flock(self._descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._descriptor)
            raise ServerRunning(str(self.path)) from None
        return self

    def __exit__(self, *exc_info):
        os.close(self._descriptor)  # closing the last descriptor releases the lock
