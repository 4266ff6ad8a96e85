"""Expiry warnings: the owner of an active key that expires within ``API_KEY_EXPIRY_WARNING`` gets
one email about it, once per key, sent by a command for cron."""

import smtplib
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.principals import Principal
from apikeys import services
from apikeys.models import ApiKey
from apikeys.services import notify_expiring_api_keys, rotate_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(users):
    owner = users["own_keys"]
    owner.email = "own.keys@example.com"
    owner.save(update_fields=["email"])
    return owner


def run_command(*args):
    out = StringIO()
    call_command("notify_expiring_api_keys", *args, stdout=out)
    return out.getvalue()


def test_owner_is_emailed_about_a_key_that_expires_within_the_warning_window(owner, make_api_key):
    key = make_api_key(owner, "nightly-backup", expiration="3d")

    notified = notify_expiring_api_keys()

    assert notified == [key]
    [message] = mail.outbox
    expires = timezone.localtime(key.expiration)
    assert message.to == ["own.keys@example.com"]
    assert message.subject == f"Your API key 'nightly-backup' expires on {expires:%Y-%m-%d %H:%M} UTC"
    rotate = f"POST /_security/api_key/{key.id}/_rotate"
    for expected in (key.id, "nightly-backup", f"{expires:%Y-%m-%d %H:%M}", rotate):
        assert expected in message.body


def test_each_key_is_warned_about_once(owner, make_api_key):
    make_api_key(owner, "nightly-backup", expiration="3d")

    notify_expiring_api_keys()
    again = notify_expiring_api_keys()

    assert again == [] and len(mail.outbox) == 1
    assert ApiKey.objects.get().expiry_notified is not None


def test_one_email_per_key(owner, make_api_key):
    make_api_key(owner, "first", expiration="1d")
    make_api_key(owner, "second", expiration="2d")

    notify_expiring_api_keys()

    assert sorted(message.subject.split("'")[1] for message in mail.outbox) == ["first", "second"]


def test_key_expiring_after_the_window_is_warned_about_once_it_enters_it(owner, make_api_key):
    make_api_key(owner, "monthly", expiration="30d")

    assert notify_expiring_api_keys() == []
    assert notify_expiring_api_keys(now=timezone.now() + timedelta(days=24)) != []
    assert len(mail.outbox) == 1


def test_warning_window_comes_from_the_setting(owner, make_api_key, settings):
    settings.API_KEY_EXPIRY_WARNING = "1h"
    make_api_key(owner, "tomorrow", expiration="1d")
    make_api_key(owner, "soon", expiration="30m")

    assert [key.name for key in notify_expiring_api_keys()] == ["soon"]


@pytest.mark.parametrize("state", ["expired", "invalidated"])
def test_no_warning_for_a_key_that_no_longer_works(owner, make_api_key, state):
    make_api_key(owner, "dead", state=state, expiration="3d")
    assert notify_expiring_api_keys() == [] and mail.outbox == []


def test_no_warning_for_a_key_that_never_expires(owner, make_api_key):
    make_api_key(owner, "forever")
    assert notify_expiring_api_keys() == [] and mail.outbox == []


def test_owner_without_an_email_is_skipped_and_warned_once_an_email_is_set(users, make_api_key):
    make_api_key(users["own_keys"], "no-address", expiration="3d")

    assert notify_expiring_api_keys() == []
    assert ApiKey.objects.get().expiry_notified is None
    users["own_keys"].email = "late@example.com"
    users["own_keys"].save(update_fields=["email"])
    assert len(notify_expiring_api_keys()) == 1


def test_disabled_owner_is_not_warned(owner, make_api_key):
    make_api_key(owner, "unusable", expiration="3d")
    owner.enabled = False
    owner.save(update_fields=["enabled"])

    assert notify_expiring_api_keys() == []


def test_replacement_of_a_rotated_key_is_warned_about_in_its_own_time(owner, make_api_key):
    old = make_api_key(owner, "weekly", expiration="3d")
    notify_expiring_api_keys()

    rotate_api_key(Principal(owner), old.id)

    assert [key.name for key in notify_expiring_api_keys()] == ["weekly"]
    assert len(mail.outbox) == 2


def test_dry_run_lists_the_keys_and_sends_and_marks_nothing(owner, make_api_key):
    make_api_key(owner, "nightly-backup", expiration="3d")

    assert len(notify_expiring_api_keys(dry_run=True)) == 1
    assert mail.outbox == []
    assert ApiKey.objects.get().expiry_notified is None


def test_a_warning_that_could_not_be_sent_is_retried_next_time(owner, make_api_key, monkeypatch):
    make_api_key(owner, "nightly-backup", expiration="3d")

    def refuse(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("mail server went away")

    monkeypatch.setattr(services, "send_mail", refuse)
    with pytest.raises(smtplib.SMTPException):
        notify_expiring_api_keys()
    assert ApiKey.objects.get().expiry_notified is None

    monkeypatch.undo()
    assert len(notify_expiring_api_keys()) == 1


# The command


def test_command_sends_the_warnings_and_prints_each_and_a_summary(owner, make_api_key):
    key = make_api_key(owner, "nightly-backup", expiration="3d")

    lines = run_command().splitlines()

    assert lines[0].startswith(f"Warned own.keys@example.com about API key [{key.id}] 'nightly-backup'")
    assert lines[1] == "Sent 1 expiry warning."
    assert len(mail.outbox) == 1


def test_command_dry_run_sends_nothing(owner, make_api_key):
    make_api_key(owner, "nightly-backup", expiration="3d")

    lines = run_command("--dry-run").splitlines()

    assert lines[0].startswith("Would warn own.keys@example.com")
    assert lines[1] == "Dry run: 1 expiry warning would be sent."
    assert mail.outbox == []


def test_command_reports_a_mail_failure_as_one_clear_error(owner, make_api_key, monkeypatch):
    make_api_key(owner, "nightly-backup", expiration="3d")

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(services, "send_mail", refuse)

    with pytest.raises(CommandError, match="could not send an expiry warning: refused"):
        run_command()
