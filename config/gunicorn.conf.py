"""gunicorn serving Keyward over HTTPS: ``gunicorn -c config/gunicorn.conf.py config.wsgi``.

gunicorn terminates TLS itself, so ``request.is_secure()`` is true and the API key service is on
(SPEC §3). Without ``KEYWARD_TLS_CERTFILE``/``KEYWARD_TLS_KEYFILE``, a self-signed certificate is
generated once into ``<data dir>/tls/``. A plain HTTP request on the port is answered with a
redirect to https (``config/plain_http.py``) instead of a dropped connection. With
``KEYWARD_PLAIN_HTTP_BIND`` it also serves plain HTTP on a loopback address or a unix socket, for a
reverse proxy on the same host that terminates TLS (``config/plain_listener.py``).

Nothing here is Keyward's own but the banner: the benchmarks serve another Django project with this
file, e.g. ``gunicorn -c config/gunicorn.conf.py bench.peer.wsgi``, as the same deployment.
"""

import os
import shutil
import socket
import sys
from pathlib import Path

from gunicorn.util import import_app

from config.access_log import PROBE_PATHS, ProbeQuietLogger
from config.plain_http import RedirectPlainHTTP
from config.plain_listener import bind_text, close_unix_listener, parse_plain_http_bind, shared_unix_listener
from config.server_lock import hold_for_server
from config.tls import ensure_certificate

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("KEYWARD_DATA_DIR") or BASE_DIR / "var")
# Each worker counts its metrics into files here, which the worker serving a scrape sums
# (metrics/registry.py). Set before any worker imports prometheus_client, which reads it then.
METRICS_DIR = DATA_DIR.resolve() / "metrics"
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)

host = os.environ.get("KEYWARD_BIND") or "127.0.0.1"
port = int(os.environ.get("PORT") or 8443)
url_host = f"[{host}]" if ":" in host else host

chdir = str(BASE_DIR)
bind = [f"{url_host}:{port}"]

plain_http_bind = os.environ.get("KEYWARD_PLAIN_HTTP_BIND") or ""
try:
    plain_http_address = parse_plain_http_bind(plain_http_bind) if plain_http_bind else None
except ValueError as error:
    sys.exit(f"KEYWARD_PLAIN_HTTP_BIND: {error}")
if isinstance(plain_http_address, tuple):
    bind.append(bind_text(plain_http_address))

# Keyward alone decides whose X-Forwarded-* headers to believe (config/proxies.py,
# KEYWARD_TRUSTED_PROXIES); gunicorn's own rules would believe 127.0.0.1 and any unix socket peer.
forwarded_allow_ips = ""
secure_scheme_headers = {}
forwarder_headers = ""

if os.environ.get("KEYWARD_TLS_CERTFILE") and os.environ.get("KEYWARD_TLS_KEYFILE"):
    certfile, keyfile = os.environ["KEYWARD_TLS_CERTFILE"], os.environ["KEYWARD_TLS_KEYFILE"]
else:
    certfile, keyfile = (str(path) for path in ensure_certificate(DATA_DIR / "tls"))


def ssl_context(conf, default_ssl_context_factory):
    # Load balancers probe without TLS: the health probes answer plain HTTP on this port too.
    return RedirectPlainHTTP(
        default_ssl_context_factory(), timeout=conf.keepalive, served_paths=PROBE_PATHS,
        app=lambda: import_app(conf.wsgi_app or conf.default_proc_name),
    )


# Threads keep a keep-alive connection open without holding a whole process; the official
# Elasticsearch client reuses its connections, so the idle timeout must outlast its pauses.
# Each worker listens on a socket of its own (SO_REUSEPORT), among which the kernel spreads new
# connections by their addresses. On one socket shared by the workers, a burst of new connections
# went to whichever worker woke first, and it took them all, one accept after another, before the
# other one woke: a connection pool opening 8 connections at once (wrk, the Elasticsearch client)
# had all 8 served by one worker in 16 of 40 bursts (7 and 1 in 9 more), and half the server idle
# for as long as they lived. With a socket per worker, all 8 land on one when the kernel puts them
# there, 1 in 128: 0 of 40 bursts, 4 and 4 in 13, 5 and 3 in 16 (tests/test_worker_balance.py).
# config/worker.py closes a stopping worker's socket at once, so that its share of new connections
# goes to the others.
reuse_port = True
worker_class = "config.worker.ReusePortThreadWorker"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
threads = int(os.environ.get("KEYWARD_THREADS") or 4)
# Behind a load balancer, longer than its idle timeout, so that it never reuses a closed connection.
keepalive = int(os.environ.get("KEYWARD_KEEPALIVE") or 5)

accesslog = "-"
# Successful health probes stay out of it unless KEYWARD_ACCESS_LOG_HEALTH is true.
logger_class = ProbeQuietLogger
errorlog = "-"
# Two instances run side by side; a shared control socket in $HOME would make them collide.
control_socket_disable = True


def on_starting(server):
    """Stop at once when the address is taken. With ``reuse_port`` the master binds nothing and each
    worker binds its own socket: a taken address would fail every worker's boot, and gunicorn would
    start new ones for ever. The probe binds without SO_REUSEPORT, so that it fails on another
    server's socket whether that one has the option or not. The plain listener's unix socket is
    bound here, once, for every worker."""
    for address in server.cfg.address:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                sys.exit(f"Cannot listen on {address[0]} port {address[1]}: {error.strerror}")
    if isinstance(plain_http_address, str):
        try:
            shared_unix_listener(plain_http_address, server.cfg.backlog)
        except OSError as error:
            sys.exit(f"Cannot listen on unix:{plain_http_address}: {error.strerror}")
    # The counters start from zero with the server. Only now: a second server started by mistake on
    # a running one's address has stopped at the probe above, and left the running one's files alone.
    shutil.rmtree(METRICS_DIR, ignore_errors=True)
    METRICS_DIR.mkdir(parents=True)
    # Held by the master and, inherited, by every worker: `manage.py restore` refuses while it is.
    hold_for_server(DATA_DIR, lambda: print("Waiting for a restore of the database to finish", flush=True))


def post_fork(server, worker):
    """A worker accepts on the plain listener's unix socket too, and serves the plain listener's
    connections without TLS (config/worker.py)."""
    if isinstance(plain_http_address, str):
        worker.sockets.append(shared_unix_listener(plain_http_address, server.cfg.backlog))
    if plain_http_address is not None:
        worker.plain_http_names = frozenset(
            name for name in (listener.getsockname() for listener in worker.sockets)
            if name == plain_http_address or (isinstance(name, tuple) and name[:2] == plain_http_address)
        )


def on_exit(server):
    """The unix socket's file goes with the server that made it."""
    if isinstance(plain_http_address, str):
        close_unix_listener(plain_http_address)


def child_exit(server, worker):
    """A stopped worker's files stay, so that the sums keep what it counted; its live gauges go."""
    from prometheus_client import multiprocess  # in the master only when a worker has stopped

    multiprocess.mark_process_dead(worker.pid, str(METRICS_DIR))


def when_ready(server):
    """The banner of ``make run``. The workers bind their sockets as they boot, just after it."""
    name = "Keyward" if server.app.app_uri == "config.wsgi" else server.app.app_uri
    print(f"{name} is serving https://{url_host}:{port}/ (certificate: {certfile})", flush=True)
    if plain_http_address is not None:
        where = (
            f"http://{bind_text(plain_http_address)}/" if isinstance(plain_http_address, tuple)
            else f"unix:{plain_http_address}"
        )
        print(f"{name} is serving plain HTTP for a reverse proxy at {where}", flush=True)
        if not os.environ.get("KEYWARD_TRUSTED_PROXIES", "").strip():
            # Nothing on it is HTTPS then, whatever the proxy says: API keys are refused there.
            print(
                "Warning: KEYWARD_TRUSTED_PROXIES is not set, so requests on the plain listener never count"
                " as HTTPS and API keys are refused on it; list the proxy's address (or unix) there",
                flush=True,
            )
