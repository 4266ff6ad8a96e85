"""Django's authentication entry point to the realm chain (SPEC §1)."""

from django.contrib.auth.backends import BaseBackend

from accounts.models import User
from accounts.realms import authenticate_realm_chain


class RealmChainBackend(BaseBackend):
    """Login, ``authenticate()`` and sessions, answered by the realms in settings.REALM_CHAIN order."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        return authenticate_realm_chain(username, password)

    def get_user(self, user_id):
        return User.objects.select_related("realm").filter(pk=user_id, enabled=True).first()
