"""Each sortable column of the API Keys page lists keys in exactly the order its plain ORDER BY
gives, page after page: the page reads those orders as index ranges one after the other
(apikeys.tables), and a range boundary inside or between pages must neither drop nor repeat a key."""

from datetime import timedelta

import pytest
from django.db.models import Case, F, IntegerField, Value, When
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.principals import Principal
from apikeys.models import ApiKey, by_expiration
from apikeys.tables import ApiKeyPaginator, ApiKeyTable

PER_PAGE = 4


def plain_order(sort: str) -> list:
    """The order each column promises, written as one ORDER BY that no index needs to serve."""
    descending = sort.startswith("-")
    column = sort.lstrip("-")
    if column == "owner":
        username = Lower("owner__username")
        if descending:
            return [username.desc(), "-owner_id", "created", "-id"]
        return [username.asc(), "owner_id", "-created", "id"]
    if column == "last_used":
        when = F("last_used").desc(nulls_last=True) if descending else F("last_used").asc(nulls_last=True)
        return [when, "-id" if descending else "id"]
    if column == "expiration":
        return by_expiration(descending)
    now = timezone.now()
    rank = Case(
        When(invalidated__isnull=False, then=Value(2)),
        When(expiration__lte=now, then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )
    return [rank.desc() if descending else rank.asc(), *by_expiration(descending)]


@pytest.fixture
def mixed_keys(make_user, file_realm):
    """Keys active, expiring, expired, invalidated, used or never, sharing expirations, last uses
    and creation times, over owners whose usernames differ only by case."""
    owners = [
        make_user("bob"),
        make_user("Alice"),
        make_user("alice", realm=file_realm),
        make_user("ALICE"),
        make_user("carol"),
    ]
    now = timezone.now().replace(microsecond=0)
    keys = []
    for number in range(47):
        ahead, ago = now + timedelta(days=number % 3 + 1), now - timedelta(days=number % 2 + 1)
        expiration = [None, ahead, ago][number % 3]
        keys.append(
            ApiKey(
                id=f"key{number:03d}{'AbC'[number % 3]}",
                name=f"key-{number}",
                hash="-",
                owner=owners[number % len(owners)],
                realm_name=owners[number % len(owners)].realm.name,
                realm_type="native",
                created=now - timedelta(hours=number % 4),
                expiration=expiration if number % 7 else now + timedelta(hours=1),
                invalidated=now - timedelta(hours=1) if number % 5 == 0 else None,
                last_used=None if number % 4 == 0 else now - timedelta(minutes=number % 6),
            )
        )
    ApiKey.objects.bulk_create(keys)


def listed_ids(viewer, keys, sort: str) -> list[str]:
    """Every page's ids as the page reads them, in order, until a page comes back short."""
    ids = []
    for page in range(1, 30):
        table = ApiKeyTable(keys, principal=Principal(viewer), order_by=sort)
        table.paginate(paginator_class=ApiKeyPaginator, per_page=PER_PAGE, page=page)
        shown = [row.record.pk for row in table.page.object_list]
        ids += shown
        if len(shown) < PER_PAGE:
            return ids
    raise AssertionError("more pages than keys")


@pytest.mark.parametrize("listing", [{"invalidated__isnull": True}, {}, {"invalidated__isnull": False}])
def test_every_order_pages_through_the_keys_as_its_plain_order_does(mixed_keys, users, listing):
    keys = ApiKey.objects.filter(**listing)
    for sort in ("status", "owner", "last_used", "expiration"):
        for direction in ("", "-"):
            expected = list(keys.order_by(*plain_order(direction + sort)).values_list("pk", flat=True))
            assert listed_ids(users["superuser"], keys, direction + sort) == expected, direction + sort
