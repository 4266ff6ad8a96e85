"""SPEC §1 and §3: API key ids, secrets and the ``ApiKey`` Authorization header."""

import base64
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.exceptions import AuthenticationFailed
from apikeys.credentials import (
    AUTHENTICATION_FAILED,
    MAX_CREDENTIAL_LENGTH,
    encode_credential,
    generate_api_key_id,
    generate_api_key_secret,
    is_api_key_header,
    parse_authorization_header,
)

URL_SAFE_ALPHABET = string.ascii_letters + string.digits + "-_"
URL_SAFE = set(URL_SAFE_ALPHABET)
api_key_ids = st.text(alphabet=URL_SAFE_ALPHABET, min_size=20, max_size=20)
api_key_secrets = st.text(alphabet=URL_SAFE_ALPHABET, min_size=22, max_size=22)
printable_text = st.text(min_size=1).filter(str.isprintable)


def header(decoded: str | bytes, scheme: str = "ApiKey") -> str:
    raw = decoded.encode() if isinstance(decoded, str) else decoded
    return f"{scheme} {base64.b64encode(raw).decode()}"


def refusal(value) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as caught:
        parse_authorization_header(value)
    assert caught.value.reason == AUTHENTICATION_FAILED
    return caught.value


def test_api_key_id_is_20_url_safe_characters():
    for _ in range(200):
        api_key_id = generate_api_key_id()
        assert len(api_key_id) == 20
        assert set(api_key_id) <= URL_SAFE


def test_api_key_secret_is_22_characters_of_unpadded_url_safe_base64_of_16_bytes():
    for _ in range(200):
        secret = generate_api_key_secret()
        assert len(secret) == 22
        assert set(secret) <= URL_SAFE
        assert len(base64.urlsafe_b64decode(secret + "==")) == 16


def test_generated_ids_and_secrets_do_not_repeat():
    assert len({generate_api_key_id() for _ in range(1000)}) == 1000
    assert len({generate_api_key_secret() for _ in range(1000)}) == 1000


def test_encoded_credential_is_standard_base64_of_id_colon_secret():
    assert encode_credential("VuaCfGcBCdbkQm-e5aOx", "ui2lp2axTNmsyakw9tvNnw") == (
        "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
    )


def test_header_parses_into_id_and_secret():
    value = "ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
    assert parse_authorization_header(value) == ("VuaCfGcBCdbkQm-e5aOx", "ui2lp2axTNmsyakw9tvNnw")


def test_generated_credentials_round_trip_through_the_header():
    for _ in range(200):
        api_key_id, secret = generate_api_key_id(), generate_api_key_secret()
        value = f"ApiKey {encode_credential(api_key_id, secret)}"
        assert parse_authorization_header(value) == (api_key_id, secret)


@given(api_key_id=api_key_ids, secret=api_key_secrets)
@settings(max_examples=200)
def test_any_id_and_secret_of_the_generated_shape_round_trip_through_the_header(api_key_id, secret):
    value = f"ApiKey {encode_credential(api_key_id, secret)}"
    assert parse_authorization_header(value) == (api_key_id, secret)


@given(api_key_id=printable_text.filter(lambda text: ":" not in text), secret=printable_text)
@settings(max_examples=200)
def test_any_printable_id_without_colon_and_any_secret_round_trip(api_key_id, secret):
    value = f"ApiKey {encode_credential(api_key_id, secret)}"
    if len(value) - len("ApiKey ") <= MAX_CREDENTIAL_LENGTH:
        assert parse_authorization_header(value) == (api_key_id, secret)


@pytest.mark.parametrize("scheme", ["ApiKey", "apikey", "APIKEY", "aPiKeY"])
def test_header_scheme_is_matched_case_insensitively(scheme):
    assert is_api_key_header(f"{scheme} abc")
    assert parse_authorization_header(header("id:secret", scheme)) == ("id", "secret")


def test_surrounding_whitespace_is_tolerated():
    assert parse_authorization_header(f"  {header('id:secret')}  \t") == ("id", "secret")


def test_decoded_value_splits_at_the_first_colon():
    assert parse_authorization_header(header("id:sec:ret:")) == ("id", "sec:ret:")


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer abc", "ApiKeys abc", "Api Key abc", "", " "])
def test_basic_bearer_and_other_headers_are_not_api_key_headers(value):
    assert not is_api_key_header(value)


def test_api_key_scheme_without_credential_is_still_an_api_key_header_so_it_is_refused_not_ignored():
    assert is_api_key_header("ApiKey")
    assert "found 0" in refusal("ApiKey").detail


def test_kelvin_sign_does_not_spell_the_api_key_scheme():
    value = header("id:secret", "Api\u212aey")
    assert not is_api_key_header(value)
    assert "ApiKey scheme" in refusal(value).detail


@pytest.mark.parametrize("value", [None, b"ApiKey aWQ6c2VjcmV0", 42])
def test_header_that_is_not_text_is_refused(value):
    assert not is_api_key_header(value)
    refusal(value)


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("Basic dXNlcjpwYXNz", "does not use the ApiKey scheme"),
        ("", "does not use the ApiKey scheme"),
        ("ApiKey", "exactly one credential, found 0"),
        ("ApiKey   ", "exactly one credential, found 0"),
        ("ApiKey aWQ6c2VjcmV0 aWQ6c2VjcmV0", "exactly one credential, found 2"),
        ("ApiKey aWQ6c2VjcmV0=", "not canonical base64"),
        ("ApiKey aWQ6c2VjcmV=", "not canonical base64"),
        ("ApiKey aWQ6c2VjcmV", "not valid base64"),
        ("ApiKey aWQ6c2VjcmV0!", "not valid base64"),
        ("ApiKey aWQ6c2Vj-cmV0", "not valid base64"),
        ("ApiKey aWQ6c2VjcmV0\u00e9", "characters outside base64"),
        ("ApiKey \uff41WQ6c2VjcmV0", "characters outside base64"),
        (header(b"id:\xff\xfe"), "not UTF-8"),
        (header("idsecret"), "no ':'"),
        (header(":secret"), "empty id or secret"),
        (header("id:"), "empty id or secret"),
        (header(":"), "empty id or secret"),
        (header("id\x00:secret"), "non-printable"),
        (header("id:sec\nret"), "non-printable"),
        ("ApiKey " + "A" * (MAX_CREDENTIAL_LENGTH + 4), f"longer than {MAX_CREDENTIAL_LENGTH}"),
    ],
)
def test_malformed_header_fails_with_one_client_message_and_a_specific_audit_detail(value, detail):
    assert detail in refusal(value).detail


def test_credential_at_the_length_bound_is_accepted():
    secret = "s" * (MAX_CREDENTIAL_LENGTH * 3 // 4 - len("id:"))
    value = header(f"id:{secret}")
    assert len(value) - len("ApiKey ") == MAX_CREDENTIAL_LENGTH
    assert parse_authorization_header(value) == ("id", secret)


@given(st.text())
@settings(max_examples=200)
def test_arbitrary_text_header_is_parsed_or_refused_with_authentication_failed(value):
    try:
        api_key_id, secret = parse_authorization_header(value)
    except AuthenticationFailed as error:
        assert error.reason == AUTHENTICATION_FAILED
    else:
        assert api_key_id and secret


@given(st.text(), st.sampled_from(["ApiKey ", "apikey ", "APIKEY  "]))
@settings(max_examples=200)
def test_arbitrary_text_after_the_scheme_is_parsed_or_refused_with_authentication_failed(credential, scheme):
    try:
        parse_authorization_header(scheme + credential)
    except AuthenticationFailed as error:
        assert error.reason == AUTHENTICATION_FAILED


@given(st.binary(max_size=2000))
@settings(max_examples=200)
def test_arbitrary_bytes_as_the_decoded_credential_are_parsed_or_refused_with_authentication_failed(raw):
    try:
        api_key_id, secret = parse_authorization_header(header(raw))
    except AuthenticationFailed as error:
        assert error.reason == AUTHENTICATION_FAILED
    else:
        assert f"{api_key_id}:{secret}".encode() == raw


@given(st.binary(max_size=200))
@settings(max_examples=200)
def test_arbitrary_bytes_as_the_header_value_are_parsed_or_refused_with_authentication_failed(raw):
    try:
        parse_authorization_header(raw.decode("latin-1"))
    except AuthenticationFailed as error:
        assert error.reason == AUTHENTICATION_FAILED
