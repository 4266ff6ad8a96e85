"""gunicorn serving Keyward over HTTPS: ``gunicorn -c config/gunicorn.conf.py config.wsgi``.

gunicorn terminates TLS itself, so ``request.is_secure()`` is true and the API key service is on
(SPEC §3). Without ``KEYWARD_TLS_CERTFILE``/``KEYWARD_TLS_KEYFILE``, a self-signed certificate is
generated once into ``<data dir>/tls/``. A plain HTTP request on the port is answered with a
redirect to https (``config/plain_http.py``) instead of a dropped connection.
"""

import os
from pathlib import Path

from config.plain_http import RedirectPlainHTTP
from config.tls import ensure_certificate

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("KEYWARD_DATA_DIR") or BASE_DIR / "var")

host = os.environ.get("KEYWARD_BIND") or "127.0.0.1"
port = int(os.environ.get("PORT") or 8443)
url_host = f"[{host}]" if ":" in host else host

chdir = str(BASE_DIR)
bind = [f"{url_host}:{port}"]

if os.environ.get("KEYWARD_TLS_CERTFILE") and os.environ.get("KEYWARD_TLS_KEYFILE"):
    certfile, keyfile = os.environ["KEYWARD_TLS_CERTFILE"], os.environ["KEYWARD_TLS_KEYFILE"]
else:
    certfile, keyfile = (str(path) for path in ensure_certificate(DATA_DIR / "tls"))


def ssl_context(conf, default_ssl_context_factory):
    return RedirectPlainHTTP(default_ssl_context_factory(), timeout=conf.keepalive)


# Threads keep a keep-alive connection open without holding a whole process; the official
# Elasticsearch client reuses its connections, so the idle timeout must outlast its pauses.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
threads = int(os.environ.get("KEYWARD_THREADS") or 4)
# Behind a load balancer, longer than its idle timeout, so that it never reuses a closed connection.
keepalive = int(os.environ.get("KEYWARD_KEEPALIVE") or 5)

accesslog = "-"
errorlog = "-"
# Two instances run side by side; a shared control socket in $HOME would make them collide.
control_socket_disable = True


def when_ready(server):
    print(f"Keyward is serving https://{url_host}:{port}/ (certificate: {certfile})", flush=True)
