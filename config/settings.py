"""Keyward settings: everything comes from the environment, with safe defaults.

Defaults are those of a production deployment on one machine: DEBUG off, HTTPS on, a SQLite file
under ``var/``. Set ``DATABASE_URL`` for PostgreSQL and ``REDIS_URL`` for a Redis cache.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from config import __version__
from config.proxies import parse_trusted_proxies

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=None):
    value = os.environ.get(name, "")
    return value if value != "" else default


def env_bool(name, default):
    value = env(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got [{value}]")


def env_list(name, default):
    value = env(name)
    return [item.strip() for item in value.split(",") if item.strip()] if value else default


DATA_DIR = Path(env("KEYWARD_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key():
    """An unset SECRET_KEY is generated once into DATA_DIR, never committed."""
    if key := env("SECRET_KEY"):
        return key
    path = DATA_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(50)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker won the race
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_tables2",
    "django_filters",
    "accounts",
    "apikeys",
    "application_privileges",
    "tokens",
    "restapi",
    "cluster",
]

# Behind trusted proxies the second tells Django whether the client used HTTPS; without, it is
# left out. Every response passes through the security middleware and the next three, which add
# the security headers and start the retention purge when due; the health probes alone are
# answered right after the security middleware (cluster/middleware.py). The authentication hot
# path is answered right after them
# (restapi/fast_path.py); the rest serve pages and the other endpoints.
MIDDLEWARE = [
    # First, so that it counts every response by its route and status (GET /_metrics).
    "metrics.middleware.RequestMetricsMiddleware",
    "config.proxies.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "cluster.middleware.HealthProbeMiddleware",
    "apikeys.middleware.ApiKeyPurgeMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "restapi.fast_path.AuthenticationFastPathMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "config.middleware.MethodNotAllowedPageMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "config.context_processors.menu",
            ],
        },
    },
]

# Database: a SQLite file by default. Several gunicorn workers write to it, so WAL lets readers
# go on during a write, and IMMEDIATE transactions make writers queue on the busy timeout
# instead of failing with "database is locked" when a read lock cannot be upgraded.
# synchronous=FULL syncs the WAL at every commit, so that an answered write (an invalidation) is
# not undone by a power loss; only the last_used writes relax it (apikeys.services, docs/security.md).
SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
}
DATABASE_URL = env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'keyward.sqlite3'}")
# Connections persist on both databases: a gunicorn thread keeps its own, so a request does not pay
# for opening the SQLite file and setting its pragmas, or for a PostgreSQL connection.
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {**SQLITE_OPTIONS, **DATABASES["default"].get("OPTIONS", {})}
elif "postgresql" in DATABASES["default"]["ENGINE"]:
    # psycopg prepares a statement once it has run this many times on a connection. Django's own
    # cursors bind parameters on the client and never prepare; the API key lookup's cursor binds on
    # the server, so authentication stops planning its join (apikeys/key_lookup.py). "off" for a
    # pooler that cannot keep prepared statements (PgBouncer before 1.21 in transaction mode).
    threshold = env("KEYWARD_DB_PREPARE_THRESHOLD", "5")
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "prepare_threshold", None if threshold.lower() == "off" else int(threshold)
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: shared by every worker. A file cache by default, Redis when REDIS_URL is set.
# KEYWARD_CACHE_KEY_PREFIX keeps installations that share one Redis apart.
if REDIS_URL := env("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("KEYWARD_CACHE_KEY_PREFIX", ""),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

# The cluster name answers like Elasticsearch's name the deployment (e.g. clear API key cache).
CLUSTER_NAME = env("KEYWARD_CLUSTER_NAME", "keyward")

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.RealmChainBackend"]
# New passwords are hashed with the first; the others verify older hashes, which Django replaces
# with the first at the next successful login: Elasticsearch's formats, given as `password_hash`, too.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "accounts.hashers.ElasticsearchPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"

# Realms (SPEC §1): the chain is tried in this order; the first realm that knows a username decides.
REALM_CHAIN = env_list("KEYWARD_REALM_CHAIN", ["default_native", "default_file"])
FILE_REALM_USERS = Path(env("KEYWARD_FILE_REALM_USERS", DATA_DIR / "realm" / "users"))
FILE_REALM_USERS_ROLES = Path(env("KEYWARD_FILE_REALM_USERS_ROLES", DATA_DIR / "realm" / "users_roles"))

# API keys (SPEC §3, §5).
API_KEY_HASH_ALGORITHM = env("KEYWARD_API_KEY_HASH_ALGORITHM", "salted_sha256")
API_KEY_PBKDF2_ITERATIONS = int(env("KEYWARD_API_KEY_PBKDF2_ITERATIONS", 100_000))
API_KEY_MAX_EXPIRATION = env("KEYWARD_API_KEY_MAX_EXPIRATION")
API_KEY_RETENTION_PERIOD = env("KEYWARD_API_KEY_RETENTION_PERIOD", "7d")
API_KEY_PURGE_INTERVAL = env("KEYWARD_API_KEY_PURGE_INTERVAL", "24h")
# The server's own purge, in the background once per interval; off when cron runs purge_api_keys.
API_KEY_PURGE_ON_REQUEST = env_bool("KEYWARD_API_KEY_PURGE_ON_REQUEST", True)
# Keys expiring within this window show "Expires in N days" and their owners are told by email.
API_KEY_EXPIRY_WARNING = env("KEYWARD_API_KEY_EXPIRY_WARNING", "7d")
# A slow hash (pbkdf2_sha256) is computed once per key and worker process, then remembered in
# memory; false computes it on every request, for policies that forbid keeping the result.
API_KEY_VERIFICATION_CACHE = env_bool("KEYWARD_API_KEY_VERIFICATION_CACHE", True)
# Each worker remembers up to this many keys it has authenticated, each use checked against the
# credential epoch that every write to a key, its owner or their realm changes (apikeys/key_cache.py,
# docs/security.md); 0 reads every key from the database on every request.
API_KEY_CACHE_MAX_KEYS = int(env("KEYWARD_API_KEY_CACHE_MAX_KEYS", 10_000))
# Where a remembered key is checked on every request: "cluster" reads the database's credential
# epoch (on SQLite from shared memory; on PostgreSQL one prepared single-row read), so a write on any
# host is seen by the next request on every host. "host", on PostgreSQL, reads a copy in this host's
# shared memory that every process here updates after its writes commit; writes made elsewhere are
# seen within a second. Several hosts share a Redis cache, so REDIS_URL makes "cluster" the default.
API_KEY_CACHE_SCOPE = env("KEYWARD_API_KEY_CACHE_SCOPE", "cluster" if env("REDIS_URL") else "host")
if API_KEY_CACHE_SCOPE not in ("host", "cluster"):
    raise ImproperlyConfigured(
        f"KEYWARD_API_KEY_CACHE_SCOPE must be host or cluster, got [{API_KEY_CACHE_SCOPE}]"
    )
# The API Keys page's overview counts every key the viewer sees; it is cached this long at most,
# and forgotten on any change to the keys. 0 counts on every page view.
API_KEY_OVERVIEW_MAX_AGE = env("KEYWARD_API_KEY_OVERVIEW_MAX_AGE", "1m")
# The API key service needs HTTPS (SPEC §3 TLS gate); switch off for local development only.
API_KEY_REQUIRE_HTTPS = env_bool("KEYWARD_API_KEY_REQUIRE_HTTPS", True)

# Access tokens (Elasticsearch's token service): how long an access token works, at most 1h as
# there. Refresh tokens work 24 hours and once; expired and invalidated tokens are purged with keys,
# after API_KEY_RETENTION_PERIOD.
TOKEN_LIFETIME = env("KEYWARD_TOKEN_LIFETIME", "20m")

# Abuse limits (SPEC §3; accounts/throttling.py): failed authentications counted in the shared cache
# in fixed windows of AUTH_FAILURE_WINDOW; 0 switches a limit off.
# - PER_USERNAME: wrong passwords for one username from one address (login page and HTTP Basic).
#   Over it, that username is refused from that address, the right password too; elsewhere it works.
# - PER_IP: wrong passwords from one address, whatever the username (credential stuffing). Over it,
#   usernames that have not authenticated from that address within AUTH_FAILURE_KNOWN_GOOD_PERIOD
#   are refused before their password is checked. Failed API keys from one address count apart
#   against the same figure: over it a failing key gets 429, and a valid key still works.
# The address is the client's (config/proxies.py): behind a reverse proxy, list it in
# KEYWARD_TRUSTED_PROXIES, or every client shares the proxy's address.
AUTH_FAILURE_LIMIT_PER_IP = int(env("KEYWARD_AUTH_FAILURE_LIMIT_PER_IP", 20))
AUTH_FAILURE_LIMIT_PER_USERNAME = int(env("KEYWARD_AUTH_FAILURE_LIMIT_PER_USERNAME", 10))
AUTH_FAILURE_WINDOW = env("KEYWARD_AUTH_FAILURE_WINDOW", "5m")
AUTH_FAILURE_KNOWN_GOOD_PERIOD = env("KEYWARD_AUTH_FAILURE_KNOWN_GOOD_PERIOD", "1d")

# HTTPS: gunicorn terminates TLS itself. Reverse proxies (config/proxies.py): from these peers
# alone, addresses and networks or "unix" (the plain listener's socket), X-Forwarded-For names the
# client and X-Forwarded-Proto says whether it used HTTPS.
try:
    TRUSTED_PROXIES = parse_trusted_proxies(env("KEYWARD_TRUSTED_PROXIES", ""))
except ValueError as error:
    raise ImproperlyConfigured(f"KEYWARD_TRUSTED_PROXIES: {error}") from None
if env("KEYWARD_TRUSTED_PROXY_HEADER"):
    # It trusted the header from every peer; refused so that nobody keeps trusting it unawares.
    raise ImproperlyConfigured(
        "KEYWARD_TRUSTED_PROXY_HEADER is no longer read: list your proxies' addresses in"
        " KEYWARD_TRUSTED_PROXIES instead (their X-Forwarded-Proto and X-Forwarded-For are then"
        " honoured, nobody else's), and unset KEYWARD_TRUSTED_PROXY_HEADER"
    )
# Metrics (GET /_metrics): who may read them, any one of those listed sufficing. "local": requests
# from this host's loopback address, the scraper beside the server; "token": an Authorization: Bearer
# header holding METRICS_TOKEN; "monitor": any principal with the monitor cluster privilege.
METRICS_ACCESS = tuple(env_list("KEYWARD_METRICS_ACCESS", ["local"]))
METRICS_TOKEN = env("KEYWARD_METRICS_TOKEN", "")
METRICS_TOKEN_MIN_LENGTH = 32
if not METRICS_ACCESS or set(METRICS_ACCESS) - {"local", "token", "monitor"}:
    raise ImproperlyConfigured(
        "KEYWARD_METRICS_ACCESS must list one or more of local, token and monitor, separated by commas, "
        f"got [{env('KEYWARD_METRICS_ACCESS')}]"
    )
if "token" in METRICS_ACCESS and not METRICS_TOKEN:
    raise ImproperlyConfigured("KEYWARD_METRICS_ACCESS includes token: set KEYWARD_METRICS_TOKEN too")
if METRICS_TOKEN and "token" not in METRICS_ACCESS:
    raise ImproperlyConfigured(
        "KEYWARD_METRICS_TOKEN is set but KEYWARD_METRICS_ACCESS does not include token: "
        "add token to it, or unset the token"
    )
if METRICS_TOKEN and (
    len(METRICS_TOKEN) < METRICS_TOKEN_MIN_LENGTH
    or not METRICS_TOKEN.isascii()
    or not METRICS_TOKEN.isprintable()
    or " " in METRICS_TOKEN
):
    raise ImproperlyConfigured(
        f"KEYWARD_METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_LENGTH} printable ASCII characters "
        "without spaces, e.g. from: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )

# HTTPS: gunicorn terminates TLS itself. Behind a proxy that does, name its header
# (e.g. "HTTP_X_FORWARDED_PROTO") so request.is_secure() trusts it.
if proxy_header := env("KEYWARD_TRUSTED_PROXY_HEADER"):
    SECURE_PROXY_SSL_HEADER = (proxy_header, "https")
# Plain HTTP is answered, not redirected, so that it can explain why API keys need HTTPS.
SECURE_SSL_REDIRECT = env_bool("KEYWARD_SSL_REDIRECT", False)
# Load balancers probe over plain HTTP and count a redirect as a failure.
SECURE_REDIRECT_EXEMPT = [r"^_health(/ready)?$"]
SECURE_HSTS_SECONDS = int(env("KEYWARD_HSTS_SECONDS", 31_536_000))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = False
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Strict"
CSRF_COOKIE_SAMESITE = "Strict"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
SILENCED_SYSTEM_CHECKS = [
    # Usernames are unique per realm (SPEC §1), not globally; RealmChainBackend resolves them.
    "auth.W004",
    # HTTP requests are answered with the HTTPS-required page instead of a redirect (SPEC §3).
    "security.W008",
    # HSTS preload is a decision for whoever owns the domain, not a default.
    "security.W021",
]

DATA_UPLOAD_MAX_MEMORY_SIZE = int(env("KEYWARD_MAX_BODY_BYTES", 1_048_576))

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Static files are served by WhiteNoise straight from the source folders: no collectstatic step.
WHITENOISE_USE_FINDERS = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # The process id tells a server's workers apart in one log.
    "formatters": {"plain": {"format": "%(asctime)s [%(process)d] %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "keyward.audit": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # DEBUG logs each slow-hash verification of an API key secret (its id only, never the secret).
        "keyward.apikeys.hashing": {
            "handlers": ["console"], "level": env("KEYWARD_HASHING_LOG_LEVEL", "INFO"), "propagate": False,
        },
        "django": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        # The server's own retention purge says what it deleted.
        "apikeys": {"level": "INFO"},
    },
    # Every other logger's warnings and errors, in the same format: without it Python would print
    # them bare, and the purge's lines not at all.
    "root": {"handlers": ["console"], "level": "WARNING"},
}

DJANGO_TABLES2_TEMPLATE = "django_tables2/bootstrap5.html"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "restapi.wire.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The OpenAPI document (/api/schema/, /api/docs/) is public: it describes the wire format only,
# which Elasticsearch and Kibana document publicly, and holds no data about keys, users or roles.
SPECTACULAR_SETTINGS = {
    "TITLE": "Keyward API",
    "DESCRIPTION": "Elasticsearch- and Kibana-compatible security endpoints: API keys, access tokens, users, "
    "roles.",
    "VERSION": __version__,
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PUBLIC": True,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "TAGS": [
        {"name": "API keys", "description": "Create, get, query and invalidate API keys (Elasticsearch)."},
        {"name": "Authentication", "description": "Who a request acts as, and what it may do."},
        {"name": "Tokens", "description": "Bearer access tokens and their refresh tokens (Elasticsearch)."},
        {"name": "Users", "description": "Native realm users (Elasticsearch)."},
        {"name": "Roles", "description": "Roles and their privileges (Elasticsearch)."},
        {"name": "Kibana roles", "description": "Roles in Kibana's shape; writes need a kbn-xsrf header."},
        {"name": "Cluster", "description": "Health probes, cluster health and root info (Elasticsearch)."},
    ],
}

# Mail (expiry warnings): printed to the console unless an SMTP server is named.
if email_host := env("KEYWARD_EMAIL_HOST"):
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": email_host,
                "port": int(env("KEYWARD_EMAIL_PORT", 587)),
                "username": env("KEYWARD_EMAIL_HOST_USER", ""),
                "password": env("KEYWARD_EMAIL_HOST_PASSWORD", ""),
                "use_tls": env_bool("KEYWARD_EMAIL_USE_TLS", True),
            },
        }
    }
else:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
    # Until a mail server is named, expiry warnings go to the server log: a choice, not an oversight.
    SILENCED_SYSTEM_CHECKS.append("mail.E001")
DEFAULT_FROM_EMAIL = env("KEYWARD_EMAIL_FROM", "keyward@localhost")
