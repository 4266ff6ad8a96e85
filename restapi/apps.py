from django.apps import AppConfig


class RestApiConfig(AppConfig):
    """The REST plumbing every app's Elasticsearch-compatible endpoints share: the wire format,
    request authentication, the TLS gate, the base API view and the OpenAPI document."""

    name = "restapi"
    verbose_name = "REST API"

    def ready(self):
        # Registers the OpenAPI descriptions of the REST API's authentication schemes.
        from restapi import schema  # noqa: F401
