"""Trusted proxies (config/proxies.py): whose X-Forwarded-For and X-Forwarded-Proto are believed, and
what they then say about the client's address and whether it used HTTPS. Nobody's by default."""

import ipaddress
import os
import re
import subprocess
import sys

import pytest
from django.core.cache import caches
from django.test import Client, RequestFactory, override_settings
from hypothesis import given
from hypothesis import strategies as st

from accounts import throttling
from accounts.exceptions import TooManyRequests
from accounts.models import AuditEvent
from apikeys.credentials import encode_credential
from config.plain_listener import parse_plain_http_bind
from config.proxies import client_address, parse_trusted_proxies, request_is_secure
from tests.server import BASE_DIR

PROXY, OTHER_PROXY, CLIENT, ATTACKER = "10.0.0.5", "10.1.2.3", "203.0.113.7", "198.51.100.9"
TRUSTED = parse_trusted_proxies(f"{PROXY}, 10.1.0.0/16, 2001:db8::/32")


def request(peer=CLIENT, forwarded_for=None, proto=None, scheme="http"):
    headers = {"REMOTE_ADDR": peer, "wsgi.url_scheme": scheme}
    if forwarded_for is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded_for
    if proto is not None:
        headers["HTTP_X_FORWARDED_PROTO"] = proto
    return RequestFactory().get("/", **headers)


@pytest.fixture
def trusted(settings):
    settings.TRUSTED_PROXIES = TRUSTED
    return settings


# The setting


def test_addresses_networks_and_unix_are_read_and_normalised():
    assert parse_trusted_proxies(" 127.0.0.1 ,10.0.0.0/8,, ::1, 2001:DB8::/32 , UNIX,") == (
        "127.0.0.1/32", "10.0.0.0/8", "::1/128", "2001:db8::/32", "unix",
    )
    assert parse_trusted_proxies("") == ()


@pytest.mark.parametrize(
    "entry", ["proxy.example.com", "10.0.0.1/8", "10.0.0.256", "10.0.0.0/33", "::1/129", "*", "unix:/x"]
)
def test_anything_else_is_refused_naming_the_entry(entry):
    with pytest.raises(ValueError, match=re.escape(f"[{entry}] is not an IP address")):
        parse_trusted_proxies(f"127.0.0.1,{entry}")


def django_check(**environment):
    env = {**os.environ, **environment}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=env, capture_output=True, text=True,
        timeout=60,
    )


def test_the_server_refuses_to_start_on_a_bad_entry():
    result = django_check(KEYWARD_TRUSTED_PROXIES="127.0.0.1,proxy.example.com")
    assert result.returncode != 0
    message = "ImproperlyConfigured: KEYWARD_TRUSTED_PROXIES: [proxy.example.com] is not an IP address"
    assert message in result.stderr


def test_the_old_header_setting_is_refused_with_a_pointer_to_the_new_one():
    result = django_check(KEYWARD_TRUSTED_PROXY_HEADER="HTTP_X_FORWARDED_PROTO")
    assert result.returncode != 0
    assert "KEYWARD_TRUSTED_PROXY_HEADER is no longer read" in result.stderr
    assert "KEYWARD_TRUSTED_PROXIES" in result.stderr


# The client's address


def test_without_trusted_proxies_the_headers_are_ignored(settings):
    assert settings.TRUSTED_PROXIES == ()
    assert client_address(request(PROXY, forwarded_for=CLIENT)) == PROXY
    assert not request_is_secure(request(PROXY, proto="https"))
    assert request_is_secure(request(PROXY, scheme="https"))


def test_from_a_trusted_proxy_the_client_is_the_address_it_forwarded_for(trusted):
    assert client_address(request(PROXY, forwarded_for=CLIENT)) == CLIENT
    assert client_address(request("2001:db8::7", forwarded_for=CLIENT)) == CLIENT


def test_the_client_is_the_rightmost_hop_that_is_no_trusted_proxy(trusted):
    # What the client wrote itself stays on the left, whatever it claims.
    header = f"{PROXY}, {ATTACKER}, {CLIENT}, {OTHER_PROXY}"
    assert client_address(request(PROXY, forwarded_for=header)) == CLIENT
    assert client_address(request(PROXY, forwarded_for=f"{CLIENT},{OTHER_PROXY},{PROXY}")) == CLIENT


def test_hops_may_carry_ports_and_brackets(trusted):
    assert client_address(request(PROXY, forwarded_for=f"{CLIENT}:4711")) == CLIENT
    assert client_address(request(PROXY, forwarded_for="[2001:db9::1]:4711")) == "2001:db9::1"
    assert client_address(request(PROXY, forwarded_for="[2001:db9::1]")) == "2001:db9::1"
    assert client_address(request(PROXY, forwarded_for="2001:DB9:0::1")) == "2001:db9::1"
    # An IPv6 socket reports IPv4 clients mapped: the same client, and the same proxy.
    assert client_address(request(PROXY, forwarded_for=f"::ffff:{CLIENT}")) == CLIENT
    assert client_address(request(f"::ffff:{PROXY}", forwarded_for=CLIENT)) == CLIENT


def test_when_every_hop_is_trusted_the_leftmost_is_the_client(trusted):
    assert client_address(request(PROXY, forwarded_for=f"{OTHER_PROXY}, {PROXY}")) == OTHER_PROXY


@pytest.mark.parametrize(
    "forwarded_for", ["", "   ", "unknown", "_hidden", f"{CLIENT}:http", "[::1", "[::1]x", "::1:80:", "a, ,"]
)
def test_an_unreadable_hop_leaves_the_last_address_a_trusted_proxy_vouched_for(trusted, forwarded_for):
    assert client_address(request(PROXY, forwarded_for=forwarded_for)) == PROXY
    header = f"{CLIENT}, {forwarded_for}, {OTHER_PROXY}"
    assert client_address(request(PROXY, forwarded_for=header)) == OTHER_PROXY


def test_a_request_without_the_header_is_the_proxys_own(trusted):
    assert client_address(request(PROXY)) == PROXY


def test_from_anyone_else_the_headers_are_ignored(trusted):
    assert client_address(request(ATTACKER, forwarded_for=CLIENT)) == ATTACKER
    assert client_address(request(ATTACKER, forwarded_for=PROXY)) == ATTACKER
    assert not request_is_secure(request(ATTACKER, proto="https"))


def test_a_unix_socket_peer_is_trusted_only_when_listed(settings):
    settings.TRUSTED_PROXIES = parse_trusted_proxies(PROXY)
    assert client_address(request("", forwarded_for=CLIENT)) == ""
    assert not request_is_secure(request("", proto="https"))
    settings.TRUSTED_PROXIES = parse_trusted_proxies(f"{PROXY},unix")
    assert client_address(request("", forwarded_for=CLIENT)) == CLIENT
    assert request_is_secure(request("", proto="https"))


def normal(address: str) -> str:
    """An address as client_address writes it: compressed, IPv4-mapped IPv6 as IPv4."""
    parsed = ipaddress.ip_address(address)
    return str(parsed.ipv4_mapped or parsed if parsed.version == 6 else parsed)


def is_trusted(address: str) -> bool:
    return any(ipaddress.ip_address(normal(address)) in ipaddress.ip_network(entry) for entry in TRUSTED)


untrusted_addresses = st.ip_addresses().map(str).filter(lambda address: not is_trusted(address))
hops = st.one_of(
    st.ip_addresses().map(str),
    st.sampled_from([PROXY, OTHER_PROXY, "10.1.255.255", "::ffff:10.0.0.5", f"[{CLIENT}]:80", "2001:db8::1"]),
    st.text(max_size=20),
)


headers = st.lists(hops, min_size=1, max_size=6).map(", ".join) | st.text(max_size=200)


@given(peer=untrusted_addresses, header=headers)
def test_any_header_from_an_untrusted_peer_changes_nothing(peer, header):
    with override_settings(TRUSTED_PROXIES=TRUSTED):
        forged = request(peer, forwarded_for=header, proto=header)
        assert client_address(forged) == peer
        assert not request_is_secure(forged)


@given(forged=st.lists(hops, max_size=6), client=untrusted_addresses)
def test_what_a_client_writes_before_its_own_hop_never_decides_its_address(forged, client):
    """The proxy appends the address the client connected from: whatever the client put before it
    in the header, that is the answer."""
    with override_settings(TRUSTED_PROXIES=TRUSTED):
        header = ", ".join([*forged, client])
        assert client_address(request(PROXY, forwarded_for=header)) == normal(client)


@given(header=headers)
def test_any_header_from_a_trusted_proxy_gives_an_address_it_vouched_for(header):
    with override_settings(TRUSTED_PROXIES=TRUSTED):
        address = client_address(request(PROXY, forwarded_for=header))
    # Never anything unreadable: the proxy's own address, or an address written as one.
    assert address == PROXY or address == normal(address)


# Whether the client used HTTPS


def test_a_trusted_proxys_forwarded_proto_decides(trusted):
    assert request_is_secure(request(PROXY, proto="https"))
    assert request_is_secure(request(PROXY, proto="HTTPS "))
    assert not request_is_secure(request(PROXY, proto="http"))
    # A proxy that reached Keyward over TLS for a client that came in plain HTTP says so.
    assert not request_is_secure(request(PROXY, proto="http", scheme="https"))
    # Without the header the connection decides.
    assert not request_is_secure(request(PROXY))
    assert request_is_secure(request(PROXY, scheme="https"))


def test_the_nearest_proxy_has_the_last_word(trusted):
    assert request_is_secure(request(PROXY, proto="http, https"))
    assert not request_is_secure(request(PROXY, proto="https, http"))
    assert not request_is_secure(request(PROXY, proto="https-ish"))


def test_django_agrees_behind_a_trusted_proxy(trusted, db):
    """HSTS is sent only on requests Django thinks secure: the middleware tells it."""
    client = Client(REMOTE_ADDR=PROXY)
    assert "Strict-Transport-Security" in client.get("/login", HTTP_X_FORWARDED_PROTO="https")
    assert "Strict-Transport-Security" not in client.get("/login", HTTP_X_FORWARDED_PROTO="http")
    assert "Strict-Transport-Security" not in Client(REMOTE_ADDR=ATTACKER).get(
        "/login", HTTP_X_FORWARDED_PROTO="https"
    )


def test_the_tls_gate_opens_only_on_a_trusted_proxys_word(trusted, db, make_user, make_api_key):
    owner = make_user("carol", "manage_own_api_key")
    key = make_api_key(owner, "behind-the-proxy")
    authorization = "ApiKey " + encode_credential(key.id, key.secret)
    through_proxy = Client(REMOTE_ADDR=PROXY).get(
        "/_security/_authenticate", HTTP_AUTHORIZATION=authorization, HTTP_X_FORWARDED_PROTO="https"
    )
    assert through_proxy.status_code == 200, through_proxy.content
    assert through_proxy.json()["username"] == "carol"
    spoofed = Client(REMOTE_ADDR=ATTACKER).get(
        "/_security/_authenticate", HTTP_AUTHORIZATION=authorization, HTTP_X_FORWARDED_PROTO="https"
    )
    assert spoofed.status_code == 400
    assert spoofed.json()["error"]["type"] == "feature_not_enabled_exception"


# Throttling counts by the client's address


def test_throttling_and_its_audit_row_see_the_client_behind_the_proxy(trusted, db):
    trusted.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": os.urandom(8).hex()
        }
    }
    caches["default"].clear()
    trusted.AUTH_FAILURE_LIMIT_PER_IP = 2
    refused = {"reason": "api key [x] does not exist"}
    for _ in range(2):
        throttling.api_key_refused(request(PROXY, forwarded_for=CLIENT), refused)
    with pytest.raises(TooManyRequests):
        throttling.api_key_refused(request(PROXY, forwarded_for=CLIENT), refused)
    # Another client behind the same proxy, and one who claims to be the first, are not throttled.
    throttling.api_key_refused(request(PROXY, forwarded_for=ATTACKER), refused)
    throttling.api_key_refused(request(ATTACKER, forwarded_for=CLIENT), refused)
    (summary,) = AuditEvent.objects.filter(action="authentication_throttled")
    assert summary.detail["address"] == CLIENT


# The plain listener's address


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("127.1.2.3:1", ("127.1.2.3", 1)),
        ("[::1]:8080", ("::1", 8080)),
        ("unix:/run/keyward/keyward.sock", "/run/keyward/keyward.sock"),
    ],
)
def test_the_plain_listener_takes_a_loopback_address_or_a_unix_socket(value, address):
    assert parse_plain_http_bind(value) == address


@pytest.mark.parametrize("value", ["0.0.0.0:8080", "10.0.0.5:8080", "[::]:8080", "[2001:db8::1]:80"])
def test_the_plain_listener_refuses_other_addresses(value):
    with pytest.raises(ValueError, match="is not a loopback address"):
        parse_plain_http_bind(value)


@pytest.mark.parametrize(
    "value",
    ["8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "localhost:8080", "::1:8080",
     "127.0.0.1:８０", "unix:"],
)
def test_the_plain_listener_refuses_what_is_no_address(value):
    with pytest.raises(ValueError, match="expected a loopback address and port|needs the socket's path"):
        parse_plain_http_bind(value)
