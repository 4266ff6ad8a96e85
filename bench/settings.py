"""Settings of the benchmarks only: Keyward's own, plus the peer library and the bench views.

``djangorestframework-api-key`` is installed from ``requirements-bench.txt`` and mounted here, so
that the product never depends on it.
"""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework_api_key"]  # noqa: F405
ROOT_URLCONF = "bench.urls"
