"""A real gunicorn, started as ``make run`` starts it, for the HTTP benchmark.

The production configuration (``config/gunicorn.conf.py``: 2 gthread workers, each on its own
listening socket, HTTPS with the self-signed certificate it generates under
``KEYWARD_DATA_DIR/tls``, persistent database connections as the settings give) serves an ``App``
on a free port of 127.0.0.1: Keyward with ``bench.settings``, or the peer project (``bench.peer``)
with the same command line but for its WSGI module and settings.
"""

import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.common import BASE_DIR, PYTHON

# The gunicorn of the virtual environment the benchmark runs in.
GUNICORN = Path(PYTHON).parent / "gunicorn"
HOST = "127.0.0.1"
START_TIMEOUT = 60
STOP_TIMEOUT = 15
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class App:
    """What one gunicorn serves: its WSGI module, its settings, and a path that answers 200 once
    Django is loaded, without touching the database or any key."""

    wsgi: str
    settings: str
    ready_path: str


KEYWARD = App(wsgi="config.wsgi", settings="bench.settings", ready_path="/bench/A")
PEER = App(wsgi="bench.peer.wsgi", settings="bench.peer.settings", ready_path="/P0")


@dataclass(frozen=True)
class Server:
    """A running gunicorn: its master process, where it listens, and where it logs."""

    process: subprocess.Popen
    port: int
    log_path: Path
    app: App

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    def worker_pids(self) -> list[int]:
        """The workers are the master's children, found by their parent pid in /proc."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # The command name may hold spaces and parentheses: the parent pid follows the last ")".
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.process.pid:
                children.append(int(stat.parent.name))
        return sorted(children)

    def worker_cpu_seconds(self) -> dict[int, float]:
        """``{pid: CPU seconds, user and system}`` of every worker since it started."""
        return {pid: cpu for pid in self.worker_pids() if (cpu := _cpu_seconds(pid)) is not None}

    def worker_rss_mb(self) -> dict[int, float]:
        """``{pid: VmRSS in MB}`` of every worker, as the kernel counts it now."""
        return {pid: rss for pid in self.worker_pids() if (rss := _vm_rss_mb(pid)) is not None}


def _vm_rss_mb(pid: int) -> float | None:
    """A process's resident memory; None when it has exited meanwhile."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # reported in kB
    return None


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime from /proc; None when the process has exited meanwhile."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(log_dir: Path, env: dict | None = None, app: App = KEYWARD) -> Iterator[Server]:
    """Start gunicorn serving ``app`` with ``env`` added to the environment, yield it once it
    answers, then stop it.

    The configuration's access log goes to stdout; here it goes to ``access.log`` in ``log_dir``
    instead, and the server's own output to ``gunicorn.log``. Both are files, never a pipe: a pipe
    nobody drains would stall the workers once its buffer is full. The log is kept, as in
    production, for it costs nothing measurable: A at -t2 -c8, 5 s runs with both workers serving,
    gave 1,206-2,606 req/s with the log on stdout (redirected to a file), 1,956-2,615 with
    ``--access-logfile`` to a file and 2,288-2,484 with it to /dev/null.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = log_dir / "gunicorn.log"
    command = [
        str(GUNICORN), "-c", "config/gunicorn.conf.py", "--access-logfile", str(log_dir / "access.log"),
        app.wsgi,
    ]
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": app.settings,
        "PORT": str(port),
        "KEYWARD_BIND": HOST,
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=environment, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = Server(process=process, port=port, log_path=log_path, app=app)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        _stop(process)


def _wait_until_serving(server: Server) -> None:
    """Until a worker answers over HTTPS; gunicorn's log is in the error if it never does."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and server.process.poll() is None:
        connection = http.client.HTTPSConnection(HOST, server.port, context=context, timeout=5)
        try:
            connection.request("GET", server.app.ready_path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass  # not listening yet, or a worker still booting
        finally:
            connection.close()
        time.sleep(0.2)
    _stop(server.process)
    raise RuntimeError(f"gunicorn did not answer on {server.url}:\n{server.log_path.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM lets gunicorn finish its requests; its whole session is killed if it hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
