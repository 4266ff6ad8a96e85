"""The realm chain (SPEC §1): native and file realms, tried in settings order."""

import logging
import os

import pytest
from django.contrib.auth import authenticate, get_user
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.http import HttpRequest

from accounts import services
from accounts.backends import RealmChainBackend
from accounts.hashers import verify_elasticsearch_hash
from accounts.models import User
from accounts.realms import (
    FileRealm,
    NativeRealm,
    authenticate_realm_chain,
    realm_chain,
    sync_realms,
)
from tests.hashes import bcrypt_hash, es_pbkdf2_hash

pytestmark = pytest.mark.django_db


class CheapArgon2PasswordHasher(Argon2PasswordHasher):
    """Still argon2, at a cost that keeps the suite fast."""

    time_cost = 1
    memory_cost = 64
    parallelism = 1


@pytest.fixture(autouse=True)
def cheap_argon2(settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CheapArgon2PasswordHasher"]


HASHES = {
    "bcrypt $2a$": lambda password: bcrypt_hash(password, "$2a$"),
    "bcrypt $2b$": lambda password: bcrypt_hash(password, "$2b$"),
    "bcrypt $2y$": lambda password: bcrypt_hash(password, "$2y$"),
    "PBKDF2": lambda password: es_pbkdf2_hash(password),
    "PBKDF2 with a 64-byte key": lambda password: es_pbkdf2_hash(password, key_bytes=64),
    "PBKDF2_STRETCH": lambda password: es_pbkdf2_hash(password, stretch=True),
}


def write_lines(path, *lines):
    """Rewrite a realm file and move its mtime forward, as an edit a few seconds later would."""
    later = (path.stat().st_mtime if path.exists() else 1_700_000_000) + 10
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.utime(path, (later, later))


@pytest.fixture
def realm_files(tmp_path, settings):
    """Point the file realm at fresh users / users_roles files in tmp_path."""
    settings.FILE_REALM_USERS = tmp_path / "users"
    settings.FILE_REALM_USERS_ROLES = tmp_path / "users_roles"
    return settings.FILE_REALM_USERS, settings.FILE_REALM_USERS_ROLES


@pytest.fixture
def file_users(realm_files):
    """file_users("name:hash", ...) writes the users file."""
    return lambda *lines: write_lines(realm_files[0], *lines)


@pytest.fixture
def file_users_roles(realm_files):
    """file_users_roles("role:user1,user2", ...) writes the users_roles file."""
    return lambda *lines: write_lines(realm_files[1], *lines)


@pytest.fixture
def chain_order(settings):
    def order(*names):
        settings.REALM_CHAIN = list(names)
        sync_realms()

    return order


# --- Native realm ---------------------------------------------------------------------------------


def test_native_user_logs_in_with_the_right_password(make_user, native_realm, realm_files):
    alice = make_user("alice", password="correct horse")

    assert authenticate_realm_chain("alice", "correct horse") == alice
    assert authenticate_realm_chain("alice", "correct horse").realm == native_realm


def test_native_passwords_are_hashed_with_argon2(make_user):
    alice = make_user("alice", password="correct horse")

    assert alice.password.startswith("argon2$")


def test_native_user_with_a_wrong_password_is_refused(make_user, realm_files):
    make_user("alice", password="correct horse")

    assert authenticate_realm_chain("alice", "wrong horse") is None


def test_disabled_native_user_is_refused_even_with_the_right_password(make_user, realm_files):
    alice = make_user("alice", password="correct horse")
    alice.enabled = False
    alice.save()

    assert authenticate_realm_chain("alice", "correct horse") is None


def test_native_user_without_a_usable_password_cannot_log_in(make_user, realm_files):
    make_user("alice")

    assert authenticate_realm_chain("alice", "") is None
    assert authenticate_realm_chain("alice", "!") is None


def test_username_no_realm_knows_is_refused(make_user, realm_files):
    make_user("alice", password="correct horse")

    assert authenticate_realm_chain("mallory", "correct horse") is None


def test_usernames_are_case_sensitive(make_user, realm_files):
    make_user("alice", password="correct horse")

    assert authenticate_realm_chain("Alice", "correct horse") is None


def test_empty_username_is_refused(realm_files):
    assert authenticate_realm_chain("", "anything") is None


def test_native_realm_looks_up_only_its_own_users(make_user, native_realm, file_realm):
    alice = make_user("alice")
    make_user("bob", realm=file_realm)

    assert NativeRealm(native_realm).lookup("alice") == alice
    assert NativeRealm(native_realm).lookup("bob") is None


# --- File realm: hashes ---------------------------------------------------------------------------


@pytest.mark.parametrize("make_hash", HASHES.values(), ids=HASHES.keys())
def test_file_user_logs_in_with_an_elasticsearch_hash(make_hash, file_users, file_realm):
    file_users(f"frank:{make_hash('s3cret-pass')}")

    frank = authenticate_realm_chain("frank", "s3cret-pass")

    assert frank is not None
    assert (frank.username, frank.realm) == ("frank", file_realm)


@pytest.mark.parametrize("make_hash", HASHES.values(), ids=HASHES.keys())
def test_file_user_with_a_wrong_password_is_refused(make_hash, file_users):
    file_users(f"frank:{make_hash('s3cret-pass')}")

    assert authenticate_realm_chain("frank", "s3cret-pasS") is None
    assert not User.objects.filter(username="frank").exists()


def test_pbkdf2_stretch_hashes_the_hex_sha512_of_the_password_not_the_password():
    stretched = es_pbkdf2_hash("pw", stretch=True)
    plain_under_stretch_prefix = es_pbkdf2_hash("pw").replace("{PBKDF2}", "{PBKDF2_STRETCH}")

    assert verify_elasticsearch_hash("pw", stretched)
    assert not verify_elasticsearch_hash("pw", plain_under_stretch_prefix)


def test_pbkdf2_cost_is_read_from_the_hash():
    stored = es_pbkdf2_hash("pw", cost=1000)
    assert verify_elasticsearch_hash("pw", stored)
    assert not verify_elasticsearch_hash("pw", stored.replace("{PBKDF2}1000$", "{PBKDF2}1001$"))


def test_non_ascii_passwords_are_hashed_as_utf8(file_users):
    file_users(f"frank:{es_pbkdf2_hash('pässwörd')}", f"greta:{bcrypt_hash('pässwörd', '$2y$')}")

    assert authenticate_realm_chain("frank", "pässwörd") is not None
    assert authenticate_realm_chain("greta", "pässwörd") is not None


def test_bcrypt_passwords_longer_than_72_bytes_are_truncated_as_elasticsearch_does(file_users):
    long_password = "x" * 72
    file_users(f"frank:{bcrypt_hash(long_password)}")

    assert authenticate_realm_chain("frank", long_password + "ignored tail") is not None


@pytest.mark.parametrize(
    "stored",
    [
        "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
        "plaintext-password",
        "$2b$04$tooshort",
        "{PBKDF2}1000$c2FsdA==$" + "A" * 43 + "=",  # salt under 8 bytes
        "{PBKDF2}abc$" + "A" * 44 + "$" + "A" * 44,
        "{PBKDF2}1000$not*base64$" + "A" * 44,
        "{PBKDF2}1000$" + "A" * 44 + "$short",
        "{PBKDF2}²$" + "A" * 44 + "$" + "A" * 44,
        "{PBKDF2}1000$ÄÖ" + "A" * 42 + "$" + "A" * 44,
    ],
    ids=[
        "sha1", "clear text", "short bcrypt", "short salt", "bad cost", "bad salt", "short key",
        "unicode cost", "non-ascii salt",
    ],
)
def test_file_user_with_an_unsupported_hash_is_known_but_cannot_log_in(
    stored, file_users, make_user, chain_order, caplog
):
    chain_order("default_file", "default_native")
    file_users(f"frank:{stored}")
    make_user("frank", password="plaintext-password")  # known to the file realm first: never reached

    with caplog.at_level(logging.WARNING, logger="accounts.realms"):
        assert authenticate_realm_chain("frank", "plaintext-password") is None

    assert "cannot authenticate" in caplog.text


# --- File realm: the files ------------------------------------------------------------------------


def test_users_file_comments_blank_and_malformed_lines_are_skipped_with_a_warning(file_users, caplog):
    file_users(
        "# users managed by ops",
        "",
        "   ",
        f"frank:{bcrypt_hash('pw-frank')}",
        "no-colon-here",
        ":hash-without-user",
        "user-without-hash:",
        f"  greta:{es_pbkdf2_hash('pw-greta')}  ",
    )

    with caplog.at_level(logging.WARNING, logger="accounts.realms"):
        assert authenticate_realm_chain("frank", "pw-frank") is not None
        assert authenticate_realm_chain("greta", "pw-greta") is not None
        assert authenticate_realm_chain("user-without-hash", "") is None

    warnings = [record for record in caplog.records if "invalid entry in users file" in record.getMessage()]
    assert [record.getMessage().rsplit("line ", 1)[1] for record in warnings] == [
        "[5]; skipping", "[6]; skipping", "[7]; skipping",
    ]


def test_users_roles_comments_blank_and_malformed_lines_are_skipped_with_a_warning(
    file_users, file_users_roles, make_role, caplog
):
    make_role("viewer")
    make_role("editor")
    file_users(f"frank:{bcrypt_hash('pw')}")
    file_users_roles(
        "# role:users", "", "viewer: frank , greta", "broken line", "editor:", ":frank", "editor:frank"
    )

    with caplog.at_level(logging.WARNING, logger="accounts.realms"):
        frank = authenticate_realm_chain("frank", "pw")

    assert sorted(frank.roles.values_list("name", flat=True)) == ["editor", "viewer"]
    assert caplog.text.count("invalid entry in users_roles file") == 3


def test_missing_realm_files_make_an_empty_file_realm(realm_files, file_realm):
    assert not realm_files[0].exists()

    assert authenticate_realm_chain("frank", "pw") is None
    assert FileRealm(file_realm).users() == {}
    assert FileRealm(file_realm).roles_of("frank") == []


def test_users_file_without_users_roles_gives_no_roles(file_users):
    file_users(f"frank:{bcrypt_hash('pw')}")

    assert list(authenticate_realm_chain("frank", "pw").roles.all()) == []


def test_unreadable_users_file_is_an_empty_realm_not_an_error(realm_files, caplog):
    realm_files[0].write_bytes(b"frank:\xff\xfe not utf-8\n")

    with caplog.at_level(logging.ERROR, logger="accounts.realms"):
        assert authenticate_realm_chain("frank", "pw") is None
    assert "could not read realm file" in caplog.text


def test_first_file_authentication_creates_the_user_row_and_the_next_reuses_it(file_users, file_realm):
    file_users(f"frank:{bcrypt_hash('pw')}")
    assert not User.objects.filter(username="frank").exists()

    first = authenticate_realm_chain("frank", "pw")
    second = authenticate_realm_chain("frank", "pw")

    assert first.pk == second.pk
    assert User.objects.filter(realm=file_realm, username="frank").count() == 1
    assert not first.has_usable_password()


def test_file_user_roles_come_from_users_roles_and_unknown_roles_are_kept_granting_nothing(
    file_users, file_users_roles, make_role
):
    make_role("viewer", cluster=["monitor"])
    make_role("editor")
    file_users(f"frank:{bcrypt_hash('pw')}")
    file_users_roles("viewer:frank,greta", "editor:greta", "ghost_role:frank")

    frank = authenticate_realm_chain("frank", "pw")

    assert list(frank.roles.values_list("name", flat=True)) == ["viewer"]
    assert frank.pending_roles == ["ghost_role"]
    assert frank.role_names() == ["viewer", "ghost_role"]
    assert set(frank.role_descriptors()) == {"viewer"}


def test_a_file_users_role_named_before_it_exists_takes_effect_once_created(
    file_users, file_users_roles, make_role
):
    file_users(f"frank:{bcrypt_hash('pw')}")
    file_users_roles("ghost_role:frank")
    authenticate_realm_chain("frank", "pw")

    services.put_role("ghost_role", cluster=["monitor"])

    frank = authenticate_realm_chain("frank", "pw")
    assert list(frank.roles.values_list("name", flat=True)) == ["ghost_role"]
    assert frank.pending_roles == []


def test_file_user_roles_follow_users_roles_when_the_file_changes(file_users, file_users_roles, make_role):
    make_role("viewer")
    make_role("editor")
    file_users(f"frank:{bcrypt_hash('pw')}")
    file_users_roles("viewer:frank")
    assert list(authenticate_realm_chain("frank", "pw").roles.values_list("name", flat=True)) == ["viewer"]

    file_users_roles("editor:frank")

    assert list(authenticate_realm_chain("frank", "pw").roles.values_list("name", flat=True)) == ["editor"]


def test_roles_granted_in_the_database_are_replaced_by_users_roles(file_users, file_users_roles, make_role):
    viewer, admin = make_role("viewer"), make_role("admin")
    file_users(f"frank:{bcrypt_hash('pw')}")
    file_users_roles("viewer:frank")
    authenticate_realm_chain("frank", "pw").roles.add(admin)

    assert list(authenticate_realm_chain("frank", "pw").roles.all()) == [viewer]


def test_changed_password_in_the_users_file_takes_effect_on_the_next_login(file_users):
    file_users(f"frank:{bcrypt_hash('old-pw')}")
    assert authenticate_realm_chain("frank", "old-pw") is not None

    file_users(f"frank:{es_pbkdf2_hash('new-pw')}")

    assert authenticate_realm_chain("frank", "old-pw") is None
    assert authenticate_realm_chain("frank", "new-pw") is not None


def test_user_removed_from_the_users_file_can_no_longer_log_in(file_users, file_realm):
    file_users(f"frank:{bcrypt_hash('pw')}", f"greta:{bcrypt_hash('pw')}")
    assert authenticate_realm_chain("frank", "pw") is not None

    file_users(f"greta:{bcrypt_hash('pw')}")

    assert authenticate_realm_chain("frank", "pw") is None
    assert FileRealm(file_realm).lookup("frank") is None
    assert authenticate_realm_chain("greta", "pw") is not None


def test_deleted_users_file_empties_the_file_realm(file_users, realm_files):
    file_users(f"frank:{bcrypt_hash('pw')}")
    assert authenticate_realm_chain("frank", "pw") is not None

    realm_files[0].unlink()

    assert authenticate_realm_chain("frank", "pw") is None


def test_disabled_file_user_is_refused(file_users):
    file_users(f"frank:{bcrypt_hash('pw')}")
    frank = authenticate_realm_chain("frank", "pw")
    frank.enabled = False
    frank.save()

    assert authenticate_realm_chain("frank", "pw") is None


def test_file_realm_lookup_finds_listed_users_that_have_a_row(file_users, file_realm):
    file_users(f"frank:{bcrypt_hash('pw')}")
    realm = FileRealm(file_realm)
    assert realm.lookup("frank") is None  # listed, but no row before the first login

    frank = authenticate_realm_chain("frank", "pw")

    assert realm.lookup("frank") == frank
    assert realm.lookup("nobody") is None


# --- The chain ------------------------------------------------------------------------------------


def test_realm_chain_follows_settings_order(chain_order):
    chain_order("default_file", "default_native")
    assert [(type(realm), realm.realm.name) for realm in realm_chain()] == [
        (FileRealm, "default_file"), (NativeRealm, "default_native"),
    ]

    chain_order("default_native")
    assert [realm.realm.name for realm in realm_chain()] == ["default_native"]


def test_realm_chain_skips_a_realm_that_does_not_exist_with_a_warning(chain_order, caplog):
    with caplog.at_level(logging.WARNING, logger="accounts.realms"):
        chain_order("no_such_realm", "default_native")
        assert [realm.realm.name for realm in realm_chain()] == ["default_native"]

    assert "no_such_realm" in caplog.text


@pytest.fixture
def bob_in_both_realms(make_user, file_users):
    """A native bob with password A and a file bob with password B."""
    native_bob = make_user("bob", password="password-A")
    file_users(f"bob:{bcrypt_hash('password-B')}")
    return native_bob


def test_with_the_native_realm_first_the_native_bob_decides(bob_in_both_realms, chain_order):
    chain_order("default_native", "default_file")

    assert authenticate_realm_chain("bob", "password-A") == bob_in_both_realms
    assert authenticate_realm_chain("bob", "password-B") is None


def test_with_the_file_realm_first_the_file_bob_decides(bob_in_both_realms, chain_order, file_realm):
    chain_order("default_file", "default_native")

    assert authenticate_realm_chain("bob", "password-A") is None
    assert authenticate_realm_chain("bob", "password-B").realm == file_realm


def test_unknown_username_in_the_first_realm_goes_on_to_the_next(make_user, file_users, chain_order):
    chain_order("default_file", "default_native")
    alice = make_user("alice", password="native-pw")
    file_users(f"frank:{bcrypt_hash('file-pw')}")

    assert authenticate_realm_chain("alice", "native-pw") == alice
    assert authenticate_realm_chain("frank", "file-pw") is not None


def test_same_username_in_both_realms_is_two_different_users(bob_in_both_realms, chain_order, native_realm):
    chain_order("default_file", "default_native")
    file_bob = authenticate_realm_chain("bob", "password-B")

    assert file_bob.pk != bob_in_both_realms.pk
    realms_of_bob = {user.realm.name for user in User.objects.filter(username="bob")}
    assert realms_of_bob == {"default_native", "default_file"}
    assert bob_in_both_realms.realm == native_realm


# --- Django authentication --------------------------------------------------------------------------


def test_django_authenticate_goes_through_the_realm_chain(make_user, file_users):
    alice = make_user("alice", password="native-pw")
    file_users(f"frank:{es_pbkdf2_hash('file-pw', stretch=True)}")

    assert authenticate(None, username="alice", password="native-pw") == alice
    assert authenticate(None, username="frank", password="file-pw").username == "frank"
    assert authenticate(None, username="alice", password="wrong") is None
    assert authenticate(None, username="alice") is None


def session_user(client):
    request = HttpRequest()
    request.session = client.session
    return get_user(request)


def test_client_login_works_for_native_and_file_users(client, make_user, file_users, file_realm):
    alice = make_user("alice", password="native-pw")
    file_users(f"frank:{bcrypt_hash('file-pw', '$2y$')}")

    assert client.login(username="alice", password="native-pw")
    assert session_user(client) == alice

    client.logout()
    assert client.login(username="frank", password="file-pw")
    assert session_user(client) == User.objects.get(realm=file_realm, username="frank")

    client.logout()
    assert not client.login(username="frank", password="native-pw")


def test_session_of_a_disabled_user_no_longer_resolves(client, make_user):
    alice = make_user("alice", password="native-pw")
    client.login(username="alice", password="native-pw")

    alice.enabled = False
    alice.save()

    assert not session_user(client).is_authenticated


def test_backend_get_user_returns_enabled_users_only(make_user):
    alice = make_user("alice")
    backend = RealmChainBackend()

    assert backend.get_user(alice.pk) == alice
    assert backend.get_user(alice.pk + 1000) is None
    User.objects.filter(pk=alice.pk).update(enabled=False)
    assert backend.get_user(alice.pk) is None
