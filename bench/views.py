"""The reference views of the HTTP benchmark, served in the same deployment as Keyward.

A is the ceiling an authenticated endpoint can reach: the same middleware, DRF and TLS, but no
authentication. A0 is the same answer from a plain Django view, to show what DRF itself costs.
C is A behind djangorestframework-api-key, the peer Keyward's ``_authenticate`` is compared with.
"""

from django.http import JsonResponse
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_api_key.permissions import HasAPIKey


class MinimalView(APIView):
    """A: no authentication, no permission, a constant answer."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"ok": True})


def minimal_function_view(request):
    """A0: A without DRF."""
    return JsonResponse({"ok": True})


class PeerKeyView(MinimalView):
    """C: A, allowed only with a valid ``Authorization: Api-Key <key>`` of the peer library."""

    permission_classes = [HasAPIKey]
