"""SPEC §3: stored API key hashes are self-describing, verified in constant time, never raise."""

import base64
import hashlib
import hmac
import string

import pytest
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from apikeys import hashers
from apikeys.credentials import generate_api_key_secret
from apikeys.hashers import (
    PBKDF2SHA256Hasher,
    SaltedSHA256Hasher,
    VerificationCache,
    make_api_key_hash,
    verification_cache,
    verify_api_key_hash,
)

SECRET = "ui2lp2axTNmsyakw9tvNnw"
URL_SAFE = set(string.ascii_letters + string.digits + "-_")
# Hypothesis examples build hashes directly with a tiny work factor to stay fast.
FAST_ITERATIONS = 2

# Secrets reach a hasher only after credentials.py refused non-printable ones, which matters:
# HMAC pads keys with zero bytes, so PBKDF2 cannot tell "a" from "a\x00".
secrets_text = st.text(min_size=1, max_size=64).filter(str.isprintable)
salts = st.text(alphabet=string.ascii_letters + string.digits + "-_./+", min_size=1, max_size=32)


@pytest.fixture(autouse=True)
def empty_verification_cache():
    verification_cache.clear()
    yield
    verification_cache.clear()


@pytest.fixture
def fast_pbkdf2(settings):
    settings.API_KEY_HASH_ALGORITHM = "pbkdf2_sha256"
    settings.API_KEY_PBKDF2_ITERATIONS = 10
    return settings


@pytest.fixture
def pbkdf2_calls(monkeypatch):
    """Counts the PBKDF2 computations, the work the verification cache exists to skip."""
    calls = []
    original = PBKDF2SHA256Hasher._pbkdf2

    def counting(self, secret, salt, iterations):
        calls.append(iterations)
        return original(self, secret, salt, iterations)

    monkeypatch.setattr(PBKDF2SHA256Hasher, "_pbkdf2", counting)
    return calls


def test_salted_sha256_hash_is_algorithm_empty_params_salt_and_hex_digest(settings):
    settings.API_KEY_HASH_ALGORITHM = "salted_sha256"
    algorithm, params, salt, digest = make_api_key_hash(SECRET).split("$")
    assert (algorithm, params) == ("salted_sha256", "")
    assert len(salt) >= 16 and set(salt) <= URL_SAFE
    assert digest == hashlib.sha256((salt + SECRET).encode()).hexdigest()


def test_pbkdf2_hash_is_algorithm_iterations_salt_and_base64_digest(fast_pbkdf2):
    algorithm, params, salt, digest = make_api_key_hash(SECRET).split("$")
    assert (algorithm, params) == ("pbkdf2_sha256", "10")
    assert len(salt) >= 16 and set(salt) <= URL_SAFE
    expected = hashlib.pbkdf2_hmac("sha256", SECRET.encode(), salt.encode(), 10)
    assert base64.b64decode(digest) == expected


def test_hash_algorithm_defaults_to_salted_sha256_when_the_setting_is_absent(settings):
    del settings.API_KEY_HASH_ALGORITHM
    assert make_api_key_hash(SECRET).startswith("salted_sha256$$")


def test_pbkdf2_iterations_default_to_100000_when_the_setting_is_absent(settings):
    del settings.API_KEY_PBKDF2_ITERATIONS
    assert PBKDF2SHA256Hasher().iterations == 100_000


def test_unknown_hash_algorithm_setting_is_a_configuration_error_naming_it(settings):
    settings.API_KEY_HASH_ALGORITHM = "md5"
    with pytest.raises(ImproperlyConfigured, match=r"\[md5\]"):
        make_api_key_hash(SECRET)


@pytest.mark.parametrize("iterations", [0, -1, "1000", 10**9])
def test_unusable_pbkdf2_iterations_setting_is_a_configuration_error(fast_pbkdf2, iterations):
    fast_pbkdf2.API_KEY_PBKDF2_ITERATIONS = iterations
    with pytest.raises(ImproperlyConfigured, match="API_KEY_PBKDF2_ITERATIONS"):
        make_api_key_hash(SECRET)


def test_each_hash_gets_a_fresh_salt(settings):
    settings.API_KEY_HASH_ALGORITHM = "salted_sha256"
    assert make_api_key_hash(SECRET) != make_api_key_hash(SECRET)


@pytest.mark.parametrize("hasher", [SaltedSHA256Hasher(), PBKDF2SHA256Hasher()])
@pytest.mark.parametrize("salt", ["", "sa$lt"])
def test_salt_must_be_present_and_free_of_the_separator(hasher, salt):
    with pytest.raises(ValueError, match="salt"):
        hasher.encode(SECRET, salt)


@pytest.mark.parametrize("algorithm", ["salted_sha256", "pbkdf2_sha256"])
def test_made_hash_verifies_the_secret_and_rejects_another(fast_pbkdf2, algorithm):
    fast_pbkdf2.API_KEY_HASH_ALGORITHM = algorithm
    secret = generate_api_key_secret()
    encoded = make_api_key_hash(secret)
    assert verify_api_key_hash(secret, encoded)
    assert not verify_api_key_hash(generate_api_key_secret(), encoded)


def test_pbkdf2_hash_made_earlier_still_verifies_after_switching_to_salted_sha256(fast_pbkdf2):
    encoded = make_api_key_hash(SECRET)
    fast_pbkdf2.API_KEY_HASH_ALGORITHM = "salted_sha256"
    del fast_pbkdf2.API_KEY_PBKDF2_ITERATIONS
    assert verify_api_key_hash(SECRET, encoded)
    assert make_api_key_hash(SECRET).startswith("salted_sha256$")


def test_salted_sha256_hash_made_earlier_still_verifies_after_switching_to_pbkdf2(settings):
    settings.API_KEY_HASH_ALGORITHM = "salted_sha256"
    encoded = make_api_key_hash(SECRET)
    settings.API_KEY_HASH_ALGORITHM = "pbkdf2_sha256"
    assert verify_api_key_hash(SECRET, encoded)


def test_pbkdf2_hash_verifies_with_the_iterations_it_was_made_with(fast_pbkdf2):
    encoded = make_api_key_hash(SECRET)
    fast_pbkdf2.API_KEY_PBKDF2_ITERATIONS = 20
    assert verify_api_key_hash(SECRET, encoded)


@pytest.mark.parametrize("algorithm", ["salted_sha256", "pbkdf2_sha256"])
def test_comparison_is_made_in_constant_time(fast_pbkdf2, monkeypatch, algorithm):
    fast_pbkdf2.API_KEY_HASH_ALGORITHM = algorithm
    encoded = make_api_key_hash(SECRET)
    original, comparisons = hmac.compare_digest, []

    def counting(a, b):
        comparisons.append(b)
        return original(a, b)

    monkeypatch.setattr(hashers.hmac, "compare_digest", counting)
    assert verify_api_key_hash(SECRET, encoded)
    assert comparisons == [encoded]


@given(secret=secrets_text, salt=salts)
@hypothesis_settings(max_examples=200)
def test_salted_sha256_verifies_its_own_output_and_rejects_a_different_secret(secret, salt):
    hasher = SaltedSHA256Hasher()
    encoded = hasher.encode(secret, salt)
    assert hasher.verify(secret, encoded)
    assert not hasher.verify(secret + "x", encoded)
    assert not hasher.verify(secret[:-1], encoded)


@given(secret=secrets_text, salt=salts)
@hypothesis_settings(max_examples=200)
def test_pbkdf2_verifies_its_own_output_and_rejects_a_different_secret(secret, salt):
    hasher = PBKDF2SHA256Hasher()
    encoded = hasher.encode(secret, salt, iterations=FAST_ITERATIONS)
    assert hasher.verify(secret, encoded)
    assert not hasher.verify(secret + "x", encoded)
    assert not hasher.verify(secret[:-1], encoded)


@pytest.mark.parametrize(
    "encoded",
    [
        None,
        b"salted_sha256$$salt$digest",
        "",
        "$",
        "$$$",
        "salted_sha256",
        "salted_sha256$$",
        "salted_sha256$$$",
        "salted_sha256$$salt$",
        "salted_sha256$$$" + hashlib.sha256(SECRET.encode()).hexdigest(),
        "salted_sha256$1$salt$" + hashlib.sha256(("salt" + SECRET).encode()).hexdigest(),
        "salted_sha256$$salt$" + hashlib.sha256(("salt" + SECRET).encode()).hexdigest().upper(),
        "salted_sha256$$sält$digest",
        "md5$$salt$digest",
        "SALTED_SHA256$$salt$digest",
        "pbkdf2_sha256$$salt$digest",
        "pbkdf2_sha256$0$salt$digest",
        "pbkdf2_sha256$-1$salt$digest",
        "pbkdf2_sha256$01$salt$digest",
        "pbkdf2_sha256$1.5$salt$digest",
        "pbkdf2_sha256$\uff11$salt$digest",
        "pbkdf2_sha256$99999999999999999999$salt$digest",
        "pbkdf2_sha256$" + "9" * 5000 + "$salt$digest",
        "pbkdf2_sha256$1$salt$not base64 \u00e9",
    ],
)
def test_malformed_stored_hash_never_verifies_and_never_raises(encoded):
    assert verify_api_key_hash(SECRET, encoded) is False


@pytest.mark.parametrize("secret", [None, b"ui2lp2axTNmsyakw9tvNnw", 42])
def test_secret_that_is_not_text_never_verifies(settings, secret):
    settings.API_KEY_HASH_ALGORITHM = "salted_sha256"
    assert verify_api_key_hash(secret, make_api_key_hash(SECRET)) is False


@given(encoded=st.text())
@hypothesis_settings(max_examples=200)
def test_arbitrary_stored_text_never_verifies(encoded):
    assert verify_api_key_hash(SECRET, encoded) is False


@given(
    algorithm=st.sampled_from(["salted_sha256", "pbkdf2_sha256"]),
    params=st.text(max_size=12),
    salt=st.text(max_size=24),
    digest=st.text(max_size=64),
)
@hypothesis_settings(max_examples=200)
def test_arbitrary_parts_under_a_known_algorithm_never_verify(algorithm, params, salt, digest):
    # Bounded iteration counts keep PBKDF2 fast when hypothesis finds a well-formed one.
    if params.isascii() and params.isdigit() and len(params) <= 8:
        params = str(int(params) % 50)
    assert verify_api_key_hash(SECRET, f"{algorithm}${params}${salt}${digest}") is False


def test_second_pbkdf2_verification_of_the_same_secret_skips_the_hashing(fast_pbkdf2, pbkdf2_calls):
    encoded = make_api_key_hash(SECRET)
    pbkdf2_calls.clear()
    assert verify_api_key_hash(SECRET, encoded)
    assert len(pbkdf2_calls) == 1
    assert verify_api_key_hash(SECRET, encoded)
    assert len(pbkdf2_calls) == 1


def test_verification_cache_can_be_switched_off(fast_pbkdf2, pbkdf2_calls, settings):
    settings.API_KEY_VERIFICATION_CACHE = False
    encoded = make_api_key_hash(SECRET)
    pbkdf2_calls.clear()
    assert verify_api_key_hash(SECRET, encoded) and verify_api_key_hash(SECRET, encoded)
    assert len(pbkdf2_calls) == 2
    assert len(verification_cache) == 0


def test_wrong_secret_is_still_rejected_after_a_cached_success(fast_pbkdf2, pbkdf2_calls):
    encoded = make_api_key_hash(SECRET)
    assert verify_api_key_hash(SECRET, encoded)
    pbkdf2_calls.clear()
    assert not verify_api_key_hash(SECRET + "x", encoded)
    assert not verify_api_key_hash(SECRET[:-1], encoded)
    assert len(pbkdf2_calls) == 2


def test_failed_verification_is_not_cached(fast_pbkdf2, pbkdf2_calls):
    encoded = make_api_key_hash(SECRET)
    pbkdf2_calls.clear()
    assert not verify_api_key_hash("wrong", encoded)
    assert not verify_api_key_hash("wrong", encoded)
    assert len(pbkdf2_calls) == 2
    assert len(verification_cache) == 0


def test_cached_success_for_one_hash_does_not_verify_another_hash(fast_pbkdf2):
    first, second = make_api_key_hash(SECRET), make_api_key_hash("another secret")
    assert verify_api_key_hash(SECRET, first)
    assert not verify_api_key_hash(SECRET, second)


def test_salted_sha256_verifications_are_not_cached(settings):
    settings.API_KEY_HASH_ALGORITHM = "salted_sha256"
    assert verify_api_key_hash(SECRET, make_api_key_hash(SECRET))
    assert len(verification_cache) == 0


def test_verification_cache_never_holds_the_plain_secret(fast_pbkdf2):
    encoded = make_api_key_hash(SECRET)
    assert verify_api_key_hash(SECRET, encoded)
    remembered = verification_cache._entries[encoded][0]
    assert SECRET.encode() not in remembered
    assert remembered != hashlib.sha256(SECRET.encode()).digest()


def test_verification_caches_of_two_processes_use_different_keys():
    first, second = VerificationCache(), VerificationCache()
    first.remember("hash", SECRET)
    second.remember("hash", SECRET)
    assert first._entries["hash"] != second._entries["hash"]


def test_verification_cache_is_bounded_and_evicts_the_oldest_entry():
    cache = VerificationCache(max_entries=3)
    for number in range(5):
        cache.remember(f"hash{number}", SECRET)
    assert len(cache) == 3
    assert not cache.contains("hash0", SECRET)
    assert not cache.contains("hash1", SECRET)
    assert all(cache.contains(f"hash{number}", SECRET) for number in (2, 3, 4))


def test_verification_cache_matches_only_the_remembered_secret():
    cache = VerificationCache()
    cache.remember("hash", SECRET)
    assert cache.contains("hash", SECRET)
    assert not cache.contains("hash", SECRET + "x")
    assert not cache.contains("other hash", SECRET)
