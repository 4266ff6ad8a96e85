"""A plain HTTP listener beside the HTTPS port, for a reverse proxy on the same host that terminates
TLS: ``KEYWARD_PLAIN_HTTP_BIND``.

It takes a loopback address and port (``127.0.0.1:8080``, ``[::1]:8080``) or a unix socket
(``unix:/run/keyward/keyward.sock``); anything else is refused, since plain HTTP across a network
carries API keys in the clear, and a proxy on another host can connect to the HTTPS port instead.
gunicorn applies its TLS settings to every listener: the worker (config/worker.py) gives this one's
connections ``PlainHTTPConfig``, so they are served without TLS and their requests are plain HTTP,
secure only when a trusted proxy says so (config/proxies.py).

A TCP listener is bound by each worker with ``SO_REUSEPORT``, like the HTTPS port. A unix socket
cannot be shared that way (a second bind of the path replaces the first): the master binds it once,
before the workers start, and every worker accepts on it.
"""

import contextlib
import errno
import ipaddress
import os
import socket
import stat

UNIX_PREFIX = "unix:"
# The socket file is srw-rw----: the proxy's user must be in the server's group.
UNIX_SOCKET_UMASK = 0o117


class PlainHTTPConfig:
    """gunicorn's configuration as a connection on the plain listener sees it: without TLS."""

    is_ssl = False

    def __init__(self, cfg):
        self._cfg = cfg

    def __getattr__(self, name):
        return getattr(self._cfg, name)


def parse_plain_http_bind(value: str) -> tuple[str, int] | str:
    """``KEYWARD_PLAIN_HTTP_BIND`` as gunicorn takes an address: (host, port), or a unix socket's path.
    A ValueError says what is wrong."""
    if value.startswith(UNIX_PREFIX):
        path = value[len(UNIX_PREFIX):]
        if not path:
            raise ValueError("unix: needs the socket's path, e.g. unix:/run/keyward/keyward.sock")
        return path
    host, colon, port = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        if not colon or (":" in host and not bracketed):
            raise ValueError
        address = ipaddress.ip_address(host[1:-1] if bracketed else host)
        if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError
    except ValueError:
        raise ValueError(
            f"expected a loopback address and port (127.0.0.1:8080, [::1]:8080) or"
            f" unix:/path/to/socket, got [{value}]"
        ) from None
    if not address.is_loopback:
        raise ValueError(
            f"[{value}] is not a loopback address: plain HTTP is served to this host only. A proxy on"
            " another host connects to the HTTPS port instead"
        )
    return str(address), int(port)


def bind_text(address: tuple[str, int]) -> str:
    """A TCP address as gunicorn's ``bind`` and URLs write it."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# The unix sockets the master has bound, by path. Kept here rather than in the configuration file,
# which gunicorn reads anew on HUP: workers started after a reload accept on the same socket.
_unix_listeners: dict[str, socket.socket] = {}


def shared_unix_listener(path: str, backlog: int) -> socket.socket:
    """The master's listening unix socket at ``path``, bound on the first call."""
    if path not in _unix_listeners:
        _unix_listeners[path] = listen_on_unix_socket(path, backlog)
    return _unix_listeners[path]


def close_unix_listener(path: str) -> None:
    """Close the master's socket at ``path``, if it bound one, and remove its file."""
    listener = _unix_listeners.pop(path, None)
    if listener is not None:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def listen_on_unix_socket(path: str, backlog: int) -> socket.socket:
    """The plain listener's unix socket, non-blocking, its file mode 0660. A socket file nobody
    listens on (left by a server that stopped) is replaced; one that another server listens on, or
    a file that is no socket, is refused with an OSError."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(mode):
            raise OSError(errno.EEXIST, "the path exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)
            else:
                raise OSError(errno.EADDRINUSE, "another server listens there")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    umask = os.umask(UNIX_SOCKET_UMASK)
    try:
        listener.bind(path)
    except OSError:
        listener.close()
        raise
    finally:
        os.umask(umask)
    listener.listen(backlog)
    listener.setblocking(False)
    return listener
