"""The server's own retention purge (SPEC §5), of API keys and access tokens alike: at most once per
``API_KEY_PURGE_INTERVAL`` across every worker and host that share the cache, in the background, so
no request waits for it.

Deployments that purge by cron alone set ``KEYWARD_API_KEY_PURGE_ON_REQUEST=false``.
"""

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from apikeys import services
from apikeys.timeunits import configured_time_value
from tokens.services import purge_tokens

log = logging.getLogger(__name__)

PURGE_LOCK = "keyward:api-key-purge"
THREAD_NAME = "keyward-api-key-purge"
# A worker asks the shared cache at most this often, so that requests in between cost nothing.
CHECK_EVERY = timedelta(minutes=1)


class ApiKeyPurgeMiddleware:
    """After a response is produced, starts the purge in a daemon thread when it is due."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.next_check = 0.0
        self.thread = None

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(settings, "API_KEY_PURGE_ON_REQUEST", True):
            try:
                self.purge_if_due()
            except Exception:
                # Housekeeping must never fail the request that happened to trigger it.
                log.exception("could not start the API key purge")
        return response

    def purge_if_due(self) -> bool:
        """Start a background purge if this worker is the first to ask in this interval."""
        if time.monotonic() < self.next_check or (self.thread is not None and self.thread.is_alive()):
            return False
        interval = configured_time_value("API_KEY_PURGE_INTERVAL")
        self.next_check = time.monotonic() + min(interval, CHECK_EVERY).total_seconds()
        # add() succeeds for one caller only until the entry expires: a lock shared by all workers.
        # Redis makes it atomic; the file cache nearly so, and a rare second purge is harmless.
        if not cache.add(PURGE_LOCK, time.time(), timeout=interval.total_seconds()):
            return False
        self.thread = threading.Thread(target=purge_in_background, name=THREAD_NAME, daemon=True)
        self.thread.start()
        return True


def purge_in_background() -> None:
    """The thread's body: purge, log any failure, and give the thread's connection back."""
    try:
        result = services.purge_api_keys()
        log.info("deleted %d API keys past retention", result.deleted)
        log.info("deleted %d access tokens past retention", purge_tokens())
    except Exception:
        log.exception("API key purge failed")
    finally:
        connection.close()
