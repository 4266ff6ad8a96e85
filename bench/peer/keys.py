"""A table of djangorestframework-api-key keys at a given size, written as the library writes them."""

from rest_framework_api_key.models import APIKey

FILLER_NAME = "bench-filler"
BATCH = 1000


def fill(total: int, key_name: str) -> str:
    """The table filled to ``total`` keys, one of them new and named ``key_name`` (any older key of
    that name deleted first); returns the new key's secret.

    The filler rows get their id, prefix and hash from the library's own ``assign_key`` (SHA-512 of a
    random key, looked up by its unique prefix), so that they are the rows it would write."""
    APIKey.objects.filter(name=key_name).delete()
    missing = total - 1 - APIKey.objects.count()
    if missing > 0:
        rows = [APIKey(name=FILLER_NAME) for _ in range(missing)]
        for row in rows:
            APIKey.objects.assign_key(row)
        APIKey.objects.bulk_create(rows, batch_size=BATCH)
    _, key = APIKey.objects.create_key(name=key_name)
    return key
