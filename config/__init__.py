"""Keyward: Elasticsearch's API key service and Kibana's API Keys page, self-hosted."""

# The one place the version is written: GET / answers it as version.number, the OpenAPI document too.
__version__ = "1.0.0"
