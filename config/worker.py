"""gunicorn's threaded worker, listening on a socket of its own (``reuse_port``) that it gives up
as soon as it stops.

With ``reuse_port`` each worker binds its own listening socket with ``SO_REUSEPORT`` and the kernel
hands every new connection to one of them; a connection waits in that socket's queue until its
worker accepts it. gunicorn's worker stops polling its socket when it is told to stop, but closes it
only once its last connection is done, seconds later: meanwhile the kernel still queues its share
of new connections there, and the close resets them. This worker accepts what is queued and closes
its socket at once, so that new connections go to the workers that go on.

It also serves the plain HTTP listener (config/plain_listener.py) without TLS.
"""

from gunicorn.workers.gthread import ThreadWorker

from config.plain_listener import PlainHTTPConfig


class ReusePortThreadWorker(ThreadWorker):
    # The names (``getsockname()``) of the listening sockets that speak plain HTTP, set by the
    # configuration's post_fork hook.
    plain_http_names = frozenset()

    def enqueue_req(self, conn):
        """A connection on the plain listener is served with a configuration without TLS: gunicorn
        neither wraps its socket nor calls its requests https."""
        if self.plain_http_names and conn.server in self.plain_http_names:
            conn.cfg = PlainHTTPConfig(self.cfg)
        super().enqueue_req(conn)

    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            self.close_listeners()

    def close_listeners(self):
        """Take every connection queued on the listening sockets, then close them.

        The connections taken are served like those already open: one request each, answered with
        ``Connection: close``. One arriving between the last accept and the close is reset, unless
        the kernel hands it to another worker's socket (sysctl ``net.ipv4.tcp_migrate_req=1``).
        """
        for listener in self.sockets:
            accepted = -1
            while accepted != self.nr_conns:  # ``accept`` takes one connection, if one is queued
                accepted = self.nr_conns
                self.accept(listener)
            listener.close()
