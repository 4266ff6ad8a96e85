"""Where the authentication hot path's time goes: Keyward's WSGI application called in process,
then cProfile's account of ``GET /_security/_authenticate`` by layer, then what the server spends
per request around the application, from the HTTP benchmark's figures.

1. In process, no network: microseconds per request of B (``_authenticate`` with an ``ApiKey``),
   F (``_forward_auth``, bare and requiring a cluster privilege) and A0 (a plain Django view in
   Keyward's project), through the same WSGI application gunicorn calls.
2. B under cProfile, its own time summed by layer: Django's request handling (the handler, its
   signals, the request and response objects), the middleware before the hot path, the hot path's
   authentication (the key, its epoch, the secret) and its answer.
3. Around the application: the workers' CPU time per request in the HTTP benchmark's run of B
   (``<profile>-<database>-http.json``), less the in-process time: gunicorn's HTTP parsing, TLS and
   the sockets.

Run as ``python -m bench.hotpath --profile reduced|full --out FILE`` after ``bench.http``.
"""

import cProfile
import io
import json
import pstats
import sys
import time

from django.core.wsgi import get_wsgi_application

from bench.common import BASE_DIR, Figure, database_label, parse_args, write_figures
from bench.http import AUTHENTICATE, create_keyward_key, ensure_bench_user  # sets Django up

FORWARD_AUTH = "/_security/_forward_auth"
REQUESTS = {"reduced": 5_000, "full": 20_000}
PROFILED = 3_000
# cProfile's cumulative times of these functions, (file ending, name), split B into its layers.
MARKS = {
    "handler": ("django/core/handlers/wsgi.py", "__call__"),
    "middleware": ("django/core/handlers/base.py", "get_response"),
    "hot path": ("restapi/fast_path.py", "__call__"),
    "answer": ("restapi/fast_path.py", "authenticate"),
    "authentication": ("apikeys/services.py", "verified_api_key"),
    "close": ("django/http/response.py", "close"),
}


def environ(path: str, authorization: str | None) -> dict:
    path, _, query = path.partition("?")
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8443", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "https", "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr, **({"HTTP_AUTHORIZATION": authorization} if authorization else {}),
    }


def caller(application, path: str, authorization: str | None):
    """One request through the application; refuses to time anything but a 200."""

    def start_response(status, headers, exc_info=None):
        if not status.startswith("200"):
            raise RuntimeError(f"{path} answered {status}")

    def call():
        body = application(environ(path, authorization), start_response)
        b"".join(body)
        body.close()

    return call


def microseconds(call, count: int) -> float:
    for _ in range(200):
        call()
    started = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - started) / count * 1e6


def by_layer(call) -> dict[str, float]:
    """B's time under cProfile by layer, as shares of the whole request."""
    profile = cProfile.Profile()
    profile.runcall(lambda: [call() for _ in range(PROFILED)])
    cumulative = {}
    for (filename, _, function), (_, _, _, total, _) in pstats.Stats(profile).stats.items():
        for mark, (ending, name) in MARKS.items():
            if function == name and filename.endswith(ending):
                cumulative[mark] = cumulative.get(mark, 0.0) + total
    whole = cumulative["handler"] + cumulative["close"]
    layers = {
        "Django's handler: the request object, request_started": cumulative["handler"]
        - cumulative["middleware"],
        "middleware before the hot path (security headers, purge check)": cumulative["middleware"]
        - cumulative["hot path"],
        "hot path: the key, its epoch, the secret, last use": cumulative["authentication"],
        "hot path: the answer and its headers": cumulative["hot path"] - cumulative["authentication"],
        "closing: request_finished (connections, caches)": cumulative["close"],
    }
    return {name: share / whole for name, share in layers.items()}


def server_cpu_per_request(profile: str) -> float | None:
    """The workers' CPU microseconds per request of B in the HTTP benchmark's median run."""
    path = BASE_DIR / "var" / "bench" / "results" / f"{profile}-{database_label()}-http.json"
    if not path.exists():
        return None
    for figure in json.loads(path.read_text()):
        if figure["name"].startswith("B: ") and figure["unit"] == "req/s":
            detail = figure["detail"]
            cpu = sum(detail["worker_cpu_s"].values())
            return cpu / detail["requests"] * 1e6
    return None


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    context = {"database": database_label(), "profile": args.profile}
    ensure_bench_user()
    authorization = "ApiKey " + create_keyward_key("hotpath")
    application = get_wsgi_application()
    count = REQUESTS[args.profile]
    figures = []

    def add(name, value, unit):
        figures.append(Figure("hotpath", name, round(value, 1), unit, detail=context))

    calls = {
        "B: _authenticate": caller(application, AUTHENTICATE, authorization),
        "F: _forward_auth": caller(application, FORWARD_AUTH, authorization),
        "F: _forward_auth?cluster=manage_own_api_key": caller(
            application, FORWARD_AUTH + "?cluster=manage_own_api_key", authorization
        ),
        "A0: plain Django view": caller(application, "/bench/A0", None),
    }
    in_process = {}
    for name, call in calls.items():
        in_process[name] = microseconds(call, count)
        add(f"in process: {name}", in_process[name], "us")
    for layer, share in by_layer(calls["B: _authenticate"]).items():
        add(f"B by layer: {layer}", share * 100, "%")
    server = server_cpu_per_request(args.profile)
    if server is not None:
        add("B: worker CPU per request over HTTPS", server, "us")
        around = server - in_process["B: _authenticate"]
        add("B: around the application (gunicorn, TLS, sockets)", around, "us")
    write_figures(args.out, figures)
    width = max(len(figure.name) for figure in figures)
    for figure in figures:
        print(f"{figure.name:<{width}} {figure.value:>10,.1f} {figure.unit}")


if __name__ == "__main__":
    main()
