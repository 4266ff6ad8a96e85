"""A plain HTTP request on the HTTPS port is answered with a redirect to https, in plain text.

Left to TLS, ``http://127.0.0.1:8443/`` fails the handshake on its first line and the connection
is dropped without a word: curl says "Empty reply from server" and a browser shows an error page.
Every TLS connection starts with a handshake record, whose first byte is 0x16; a request line
starts with a letter. The first byte is peeked, not read, so a TLS connection reaches the
handshake untouched.

Health probes are the exception: load balancers often probe without TLS, and count a redirect as a
failure. A GET or HEAD of one of ``served_paths`` is handed to the application as a plain HTTP
request (``wsgi.url_scheme`` http, so nothing behind the TLS gate opens) and answered, and the
connection closed: nothing else ever travels in clear text on this port.
"""

import errno
import io
import socket
import ssl
import sys
import time

TLS_HANDSHAKE_RECORD = 0x16
# Enough for a browser's request head; a longer one is answered from what arrived.
HEAD_LIMIT = 8192
# A client that starts a request and stalls holds a worker thread this long at most; gunicorn's
# configuration passes its keep-alive timeout, which it gives a silent connection too.
READ_TIMEOUT = 5.0
HTTP_METHOD_CHARACTERS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
HOST_CHARACTERS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")


class PlainHTTPAnswered(OSError):
    """The connection spoke plain HTTP and has been answered.

    gunicorn ends a connection whose setup raised ENOTCONN quietly, as one the client already
    left, and closes it gracefully so that the answer is not cut short.
    """

    def __init__(self):
        super().__init__(errno.ENOTCONN, "plain HTTP on the HTTPS port: answered with a redirect to https")


class HandshakeTimedOut(OSError):
    """A TLS handshake left unfinished within the read timeout. Its errno is one gunicorn closes the
    connection on without logging a traceback, as for a client that went away."""

    def __init__(self):
        super().__init__(errno.ENOTCONN, "TLS handshake not finished within the read timeout")


class RequestTimedOut(OSError):
    """No request within the read timeout on a new connection: closed as quietly as one the client
    left (ENOTCONN), rather than with a traceback in the log for every unused connection."""

    def __init__(self):
        super().__init__(errno.ENOTCONN, "no request within the read timeout")


class QuietTimeoutSSLSocket(ssl.SSLSocket):
    """An SSL socket whose read timeout ends the connection quietly (``RequestTimedOut``)."""

    def recv(self, *args, **kwargs):
        try:
            return super().recv(*args, **kwargs)
        except TimeoutError:
            raise RequestTimedOut from None

    def recv_into(self, *args, **kwargs):
        try:
            return super().recv_into(*args, **kwargs)
        except TimeoutError:
            raise RequestTimedOut from None


class RedirectPlainHTTP:
    """gunicorn's SSLContext, except that a connection not opening with TLS gets a redirect.

    gunicorn's ``ssl_context`` server hook returns it; gunicorn only calls ``wrap_socket`` on it,
    in the worker thread that serves the connection, once the client has sent something.
    """

    def __init__(self, context, timeout: float = READ_TIMEOUT, served_paths=frozenset(), app=None):
        self.context = context
        self.context.sslsocket_class = QuietTimeoutSSLSocket
        self.timeout = timeout
        # ``app`` returns the WSGI application, imported when a probe first needs it.
        self.served_paths, self.app = served_paths, app

    def __getattr__(self, name):
        return getattr(self.context, name)

    def wrap_socket(self, sock, *args, **kwargs):
        if _opens_with_plain_text(sock, self.timeout):
            _answer_plain_request(sock, self.timeout, self.served_paths, self.app)
            raise PlainHTTPAnswered
        return _handshake(self.context.wrap_socket(sock, *args, **kwargs), self.timeout)


def _handshake(sock, read_timeout: float):
    """The TLS handshake, then the wait for the first request, each within the read timeout.

    gunicorn does both without one, in a thread of its own: a client that starts a handshake and
    goes quiet, or finishes it and sends nothing (a browser's connections opened ahead of need),
    held a thread until it gave up, 30 s for Chromium, and a few of them stopped the worker. The
    timeout stays on the socket for the first request; gunicorn makes a kept-alive connection
    blocking again when its next request arrives."""
    sock.settimeout(read_timeout)
    try:
        sock.do_handshake()
    except TimeoutError:
        raise HandshakeTimedOut from None
    return sock


def _opens_with_plain_text(sock, read_timeout: float) -> bool:
    timeout = sock.gettimeout()
    sock.settimeout(read_timeout)
    try:
        first = sock.recv(1, socket.MSG_PEEK)
    except OSError:
        # Silence or a reset: the handshake meets the same end and gunicorn deals with it.
        return False
    finally:
        sock.settimeout(timeout)
    return bool(first) and first[0] != TLS_HANDSHAKE_RECORD


def _answer_plain_request(sock, read_timeout: float, served_paths, app) -> None:
    """A probe of ``served_paths`` answered by the application; any other request redirected."""
    timeout = sock.gettimeout()
    sock.settimeout(read_timeout)
    try:
        head = _read_head(sock, read_timeout)
        request = _parse_head(head, sock)
        if request is None:
            return
        method, location = request
        lines = [line.rstrip(b"\r") for line in head.partition(b"\r\n\r\n")[0].split(b"\n")]
        target = lines[0].split(b" ")[1]
        probe = target.partition(b"?")[0].decode("latin-1") in served_paths
        if app is not None and method in (b"GET", b"HEAD") and probe:
            sock.sendall(_served(app(), method, target, lines[1:], sock))
        else:
            sock.sendall(_redirect(location, with_body=method != b"HEAD"))
    except OSError:
        pass
    finally:
        sock.settimeout(timeout)


def _served(app, method: bytes, target: bytes, header_lines: list[bytes], sock) -> bytes:
    """The application's answer to one plain HTTP request without a body, to be sent as it is."""
    path, _, query = target.decode("latin-1").partition("?")
    host, port = sock.getsockname()[:2]
    environ = {
        "REQUEST_METHOD": method.decode(), "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
        "SERVER_NAME": host, "SERVER_PORT": str(port), "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": sock.getpeername()[0], "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
        "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    for line in header_lines:
        if not line:
            break
        name, colon, value = line.partition(b":")
        # An underscore would pass for a dash: dropped, as gunicorn drops it.
        if not colon or b"_" in name:
            continue
        key = "HTTP_" + name.strip().decode("latin-1").upper().replace("-", "_")
        if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            environ[key] = value.strip().decode("latin-1")
    started = []

    def start_response(status, headers, exc_info=None):
        started[:] = [status, headers]

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    status, headers = started
    headers = [
        (name, value) for name, value in headers if name.lower() not in ("content-length", "connection")
    ]
    headers += [("Content-Length", str(len(body))), ("Connection", "close")]
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1") + (body if method != b"HEAD" else b"")


def _read_head(sock, read_timeout: float) -> bytes:
    """The request line and headers, or what of them arrived within ``read_timeout`` in all."""
    head = b""
    deadline = time.monotonic() + read_timeout
    while b"\r\n\r\n" not in head and len(head) < HEAD_LIMIT:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(HEAD_LIMIT - len(head))
        except TimeoutError:
            break
        if not chunk:
            break
        head += chunk
    return head


def _parse_head(head: bytes, sock) -> tuple[bytes, bytes] | None:
    """(method, the https URL of the request's target), or None when ``head`` is no HTTP request."""
    line, newline, headers = head.partition(b"\n")
    parts = line.rstrip(b"\r").split(b" ")
    if not newline or len(parts) != 3:
        return None
    method, target, version = parts
    if not (method and set(method) <= HTTP_METHOD_CHARACTERS and version.startswith(b"HTTP/")):
        return None
    if target.lower().startswith(b"http://"):
        # The absolute form a proxy receives: the host is in the target.
        host, _, path = target[len(b"http://"):].partition(b"/")
        target = b"/" + path
    else:
        host = _host_header(headers)
    if not target.startswith(b"/") or not all(0x21 <= byte <= 0x7E for byte in target):
        target = b"/"
    if not host or not set(host) <= HOST_CHARACTERS:
        host = _local_address(sock)
    return method, b"https://" + host + target


def _host_header(headers: bytes) -> bytes:
    for line in headers.split(b"\n"):
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"host":
            return value.strip()
    return b""


def _local_address(sock) -> bytes:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}".encode()


def _redirect(location: bytes, with_body: bool) -> bytes:
    body = (
        b"This port speaks HTTPS only. The address you asked for is\n\n    "
        + location
        + b"\n\nA server started by `make run` uses a self-signed certificate: your browser warns about it,"
        b" and curl trusts it with --cacert var/tls/cert.pem.\n"
    )
    head = (
        b"HTTP/1.1 308 Permanent Redirect\r\n"
        b"Location: " + location + b"\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        # Not remembered: the port might serve something else one day.
        b"Cache-Control: no-store\r\n"
        b"Connection: close\r\n"
        b"\r\n"
    )
    return head + body if with_body else head
