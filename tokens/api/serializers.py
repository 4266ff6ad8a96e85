"""OpenAPI shapes of the token endpoints' bodies (the views build their answers as plain dicts)."""

from rest_framework import serializers

from apikeys.api.serializers import AuthenticateResponseSerializer


class GetTokenRequestSerializer(serializers.Serializer):
    grant_type = serializers.ChoiceField(choices=["password", "client_credentials", "refresh_token"])
    username = serializers.CharField(required=False, help_text="The user to prove, for `password`.")
    password = serializers.CharField(required=False, help_text="That user's password, for `password`.")
    refresh_token = serializers.CharField(required=False, help_text="For `refresh_token`: used once.")
    scope = serializers.CharField(required=False, help_text="Accepted; the only scope is `full`.")


class GetTokenResponseSerializer(serializers.Serializer):
    access_token = serializers.CharField(help_text="For `Authorization: Bearer`; in this response only.")
    type = serializers.CharField(help_text="Always `Bearer`.")
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")
    scope = serializers.CharField(required=False, help_text="`full`, when the request names a scope.")
    refresh_token = serializers.CharField(
        required=False, help_text="Works once, within 24 hours; not for `client_credentials`."
    )
    authentication = AuthenticateResponseSerializer(help_text="Whom the token authenticates.")


class TokenErrorSerializer(serializers.Serializer):
    error = serializers.ChoiceField(choices=["invalid_request", "unsupported_grant_type", "invalid_grant"])
    error_description = serializers.CharField()


class InvalidateTokenRequestSerializer(serializers.Serializer):
    token = serializers.CharField(required=False, help_text="An access token.")
    refresh_token = serializers.CharField(required=False, help_text="A refresh token.")
    realm_name = serializers.CharField(required=False, help_text="Every token of the realm's users.")
    username = serializers.CharField(required=False, help_text="Every token of the user.")


class InvalidateTokenResponseSerializer(serializers.Serializer):
    invalidated_tokens = serializers.IntegerField()
    previously_invalidated_tokens = serializers.IntegerField()
    error_count = serializers.IntegerField()
