"""The peer's WSGI application: ``gunicorn -c config/gunicorn.conf.py bench.peer.wsgi``.

The settings are set, not defaulted: the benchmark's environment names Keyward's.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.peer.settings"
application = get_wsgi_application()
