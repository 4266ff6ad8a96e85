"""The README's shell examples, run as written against a real server.

The examples say https://127.0.0.1:8443 and var/tls/cert.pem. To run them unchanged without
touching a server someone already runs on port 8443, they run in a network namespace of their
own, whose port 8443 is relayed to the test server, from a copy of the repository whose `var`
is the test server's data directory. They run in one bash session, in the README's order, under
`set -euo pipefail`, with curl told to fail on an HTTP error (`fail-with-body` in a curlrc), so
that an example answered with an error fails the test even where the README shows no answer.
Where the README shows an answer as a comment (`# {...}`), the real answer must have those fields;
ids and secrets, random by nature, are compared by their shape.
"""

import ast
import json
import os
import shutil
import socket
import string
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.server import BASE_DIR, missing_service

pytestmark = pytest.mark.server

README = BASE_DIR / "README.md"
EXAMPLE_PORT = 8443
SCRIPT_TIMEOUT = 300

# Blocks the test does not run, with the reason; each must still be in the README, word for word.
NOT_RUN = {
    # They start the server the examples talk to, which the test starts itself, and the whole suite.
    "make run\nmake test\n": "starts the server and runs the whole suite",
    # A placeholder for the reader to fill in; the test exports the test server's password instead.
    "export ELASTIC_PASSWORD='the printed password'\n": "a placeholder",
    # A second server in the foreground, on a database with a fixed name in the shared PostgreSQL,
    # which could be the reader's own.
    "createdb -h 127.0.0.1 -U postgres keyward2\n"
    "PORT=9443 KEYWARD_DATA_DIR=var2 DATABASE_URL=postgres://postgres@127.0.0.1:5432/keyward2 make run\n":
        "starts a second server on a database of a fixed name",
}

# The Python example is one the README asks the reader to save under this name and run.
PYTHON_EXAMPLE = "keys.py"

# Answer fields whose values are random: compared by shape, not by value.
RANDOM_FIELDS = {
    "id", "api_key", "encoded", "invalidated_api_keys", "updated", "noops", "access_token", "refresh_token",
}
ELLIPSIS = "..."
SEGMENT_MARK = "\x1ereadme-segment"


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block, in order."""
    blocks, language, code = [], None, []
    for line in text.splitlines(keepends=True):
        if language is None and line.startswith("```"):
            language, code = line[3:].strip(), []
        elif language is not None and line.rstrip() == "```":
            blocks.append((language, "".join(code)))
            language = None
        elif language is not None:
            code.append(line)
    assert language is None, "the README has a fenced block that is never closed"
    return blocks


def segments(code: str) -> list[tuple[str, list[str]]]:
    """Split a block into (commands, the answer the README shows after them as comments)."""
    result, commands, answer = [], [], []
    for line in code.splitlines(keepends=True):
        if line.startswith("# ") and commands:
            answer.append(line[2:].strip())
            continue
        if answer:
            result.append(("".join(commands), answer))
            commands, answer = [], []
        commands.append(line)
    if commands:
        result.append(("".join(commands), answer))
    return result


def inline_answers(python: str) -> list[str]:
    """The answers a Python example shows after its print() calls: `print(...)  # answer`."""
    return [
        line.split("  # ", 1)[1].strip()
        for line in python.splitlines()
        if line.lstrip().startswith("print(") and "  # " in line
    ]


def answers_in(output: str) -> list:
    """The JSON documents and Python literals in ``output``, in order: curl prints bodies without
    a newline between them, Python prints one value a line; other lines are skipped."""
    decoder, values, position = json.JSONDecoder(), [], 0
    while position < len(output):
        if output[position].isspace():
            position += 1
            continue
        try:
            value, position = decoder.raw_decode(output, position)
            values.append(value)
            continue
        except json.JSONDecodeError:
            pass
        end = output.find("\n", position)
        end = len(output) if end == -1 else end
        try:
            values.append(ast.literal_eval(output[position:end].strip()))
        except (ValueError, SyntaxError):
            pass
        position = end + 1
    return values


def assert_like(expected, actual, field=None, where="answer"):
    """``actual`` has every field of ``expected``, with equal values except random ones."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for name, value in expected.items():
            assert name in actual, f"{where}: no field [{name}] in {actual!r}"
            assert_like(value, actual[name], name, f"{where}.{name}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), f"{where}: {actual!r} for {expected!r}"
        for index, (value, got) in enumerate(zip(expected, actual)):
            assert_like(value, got, field, f"{where}[{index}]")
    elif isinstance(expected, str) and field in RANDOM_FIELDS:
        # A random value of the same kind: from the same alphabet, and as long unless shortened.
        assert isinstance(actual, str) and actual, f"{where}: {actual!r} is no value like {expected!r}"
        alphabet = set(string.ascii_letters + string.digits + "-_=+/")
        assert set(actual) <= alphabet, f"{where}: {actual!r} is no value like {expected!r}"
        if ELLIPSIS not in expected:
            assert len(actual) == len(expected), f"{where}: {actual!r} is not as long as {expected!r}"
    elif isinstance(expected, str) and ELLIPSIS in expected:
        assert isinstance(actual, str), f"{where}: {actual!r} is no value like {expected!r}"
        assert actual.startswith(expected.split(ELLIPSIS)[0]), f"{where}: {actual!r} for {expected!r}"
    else:
        assert actual == expected, f"{where}: {actual!r}, the README says {expected!r}"


def assert_text_like(expected: str, output: str, where: str):
    """A line of ``output`` reads ``expected``, where "..." stands for anything."""
    parts = expected.split(ELLIPSIS)
    for line in output.splitlines():
        line, position = line.strip(), 0
        if not line.startswith(parts[0]):
            continue
        for part in parts:
            found = line.find(part, position)
            if found == -1:
                break
            position = found + len(part)
        else:
            if parts[-1] == "" or line.endswith(parts[-1]):
                return
    pytest.fail(f"{where}: no line reads {expected!r} in:\n{output}")


def assert_answers(expected: list[str], output: str, where: str):
    documents = []
    for text in expected:
        try:
            documents.append(json.loads(text))
        except json.JSONDecodeError:
            try:
                documents.append(ast.literal_eval(text))
            except (ValueError, SyntaxError):
                assert_text_like(text, output, where)
    if documents:
        got = answers_in(output)
        assert len(got) >= len(documents), f"{where}: expected {documents!r}, the output was:\n{output}"
        for document, actual in zip(documents, got[-len(documents):]):
            assert_like(document, actual, where=where)


class Namespace:
    """A network namespace with only a loopback interface, kept alive by a process that ends when
    the test closes its stdin (or dies)."""

    def __init__(self):
        try:
            self.holder = subprocess.Popen(
                ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && echo ready && exec cat"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        except FileNotFoundError:
            missing_service("unshare is missing (util-linux)")
        if self.holder.stdout.readline().strip() != "ready":
            error = self.holder.stderr.read()
            self.holder.wait()
            missing_service(f"no network namespace here (run as root?): {error.strip()}")
        self.path = f"/proc/{self.holder.pid}/ns/net"

    def command(self, *args: str) -> list[str]:
        return ["nsenter", f"--net={self.path}", "--", *args]

    def close(self):
        self.holder.stdin.close()
        self.holder.wait(10)


class Relay:
    """Listens on 127.0.0.1:``port`` inside ``namespace`` and joins each connection to ``upstream``
    in the test's own namespace: bytes in both directions, untouched, TLS included."""

    def __init__(self, namespace: Namespace, port: int, upstream: tuple[str, int]):
        self.upstream, self.stopped = upstream, threading.Event()
        own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
        inside = os.open(namespace.path, os.O_RDONLY)
        try:
            # A socket stays in the namespace it was made in: only this thread enters it, briefly.
            os.setns(inside, os.CLONE_NEWNET)
            try:
                self.listener = socket.create_server(("127.0.0.1", port))
            finally:
                os.setns(own, os.CLONE_NEWNET)
        finally:
            os.close(inside)
            os.close(own)
        self.listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._join, args=(client,), daemon=True).start()

    def _join(self, client):
        client.settimeout(None)
        with client, socket.create_connection(self.upstream) as upstream:
            back = threading.Thread(target=_pump, args=(upstream, client))
            back.start()
            _pump(client, upstream)
            back.join()

    def close(self):
        self.stopped.set()
        self.listener.close()


def _pump(source, destination):
    try:
        while data := source.recv(65536):
            destination.sendall(data)
    except OSError:
        pass
    try:
        destination.shutdown(socket.SHUT_WR)
    except OSError:
        pass


@pytest.fixture(scope="module")
def namespace():
    namespace = Namespace()
    yield namespace
    namespace.close()


@pytest.fixture(scope="module")
def checkout(keyward_server, tmp_path_factory):
    """A copy of the repository as a fresh clone has it, with the test server's data as its `var`
    and the suite's `.venv` (the examples install nothing new: pip may not reach an index)."""
    root = tmp_path_factory.mktemp("readme") / "keyward"
    shutil.copytree(
        BASE_DIR, root,
        ignore=shutil.ignore_patterns(".git", ".venv", "var", "__pycache__", ".*_cache", ".hypothesis"),
    )
    (root / ".venv").symlink_to(BASE_DIR / ".venv")
    (root / "var").symlink_to(keyward_server.data_dir)
    return root


def reader_environment(server, home: Path) -> dict:
    """A reader's shell: ELASTIC_PASSWORD exported, and DATABASE_URL as `make run` had it when the
    server runs on PostgreSQL (on SQLite the checkout's var/ holds the server's database)."""
    (home / ".curlrc").write_text("fail-with-body\nno-progress-meter\n")
    env = {
        "PATH": os.environ["PATH"], "HOME": str(home), "CURL_HOME": str(home), "LANG": "C.UTF-8",
        "ELASTIC_PASSWORD": server.password, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    if server.sqlite_path is None:
        env["DATABASE_URL"] = server.database_url
    return env


def readme_examples() -> tuple[list[tuple[str, list[str]]], str]:
    """The shell examples to run as (commands, shown answer) segments, and the Python example."""
    blocks = fenced_blocks(README.read_text())
    shell = [code for language, code in blocks if language == "sh"]
    for skipped in NOT_RUN:
        assert shell.count(skipped) == 1, f"NOT_RUN names a block the README no longer has:\n{skipped}"
    python = [code for language, code in blocks if language == "python"]
    assert len(python) == 1, "the README should have one Python example"
    assert f"Save it as `{PYTHON_EXAMPLE}`" in README.read_text()
    run = [segment for code in shell if code not in NOT_RUN for segment in segments(code)]
    return run, python[0]


def test_the_readme_shell_examples_work_as_written(keyward_server, namespace, checkout, tmp_path):
    examples, python = readme_examples()
    (checkout / PYTHON_EXAMPLE).write_text(python)
    for index, (commands, _) in enumerate(examples):
        if f".venv/bin/python {PYTHON_EXAMPLE}" in commands:
            examples[index] = (commands, inline_answers(python))
    script = ["set -euo pipefail", "trap 'echo \"README command failed ($?): $BASH_COMMAND\" >&2' ERR"]
    for index, (commands, _) in enumerate(examples):
        script += [f"printf '\\n{SEGMENT_MARK} {index}\\n'", commands]
    relays = [Relay(namespace, EXAMPLE_PORT, (keyward_server.host, keyward_server.port))]
    if keyward_server.sqlite_path is None:
        database = urlsplit(keyward_server.database_url)
        relays.append(Relay(namespace, database.port or 5432, (database.hostname, database.port or 5432)))
    try:
        result = subprocess.run(
            namespace.command("bash", "-c", "\n".join(script)), cwd=checkout,
            env=reader_environment(keyward_server, tmp_path), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=SCRIPT_TIMEOUT,
        )
    finally:
        for relay in relays:
            relay.close()

    outputs = result.stdout.split(f"{SEGMENT_MARK} ")[1:]
    if result.returncode != 0:
        last, output = (examples[len(outputs) - 1][0], outputs[-1]) if outputs else ("(none)", "")
        pytest.fail(f"the README example\n{last}\nfailed ({result.returncode}):\n{result.stderr}\n{output}")
    assert len(outputs) == len(examples)
    for (commands, answer), output in zip(examples, outputs):
        output = output.split("\n", 1)[1] if "\n" in output else ""
        if answer:
            assert_answers(answer, output, where=commands.strip().splitlines()[0])
