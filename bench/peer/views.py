"""The peer's endpoints: P as the library's documentation protects a view, P0 without protection."""

from django.http import JsonResponse
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_api_key.permissions import HasAPIKey


class KeyProtectedView(APIView):
    """P: allowed only with a valid ``Authorization: Api-Key <key>``; DRF's default authentication
    classes and renderers, as a project that sets none has them."""

    permission_classes = [HasAPIKey]

    def get(self, request):
        return Response({"ok": True, "method": request.method, "path": request.path})


def plain_view(request):
    """P0: the same answer from a plain Django view, through the same middleware."""
    return JsonResponse({"ok": True, "method": request.method, "path": request.path})
