"""The OpenAPI document of the REST API (SPEC §4): how its authentication schemes are described,
and the page at ``/api/docs/`` that renders it as plain HTML.

The page is server-rendered from the same generated document that ``/api/schema/`` serves, so the
two cannot drift apart, and it needs no script: it works under the strict Content-Security-Policy.
"""

from dataclasses import dataclass

from django.conf import settings
from django.shortcuts import render
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.settings import spectacular_settings

HTTP_METHODS = ("get", "post", "put", "delete", "patch", "head", "options")
# Deeper levels are summarised by their type only: enough for role descriptors and queries.
MAX_SHAPE_DEPTH = 5


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "restapi.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'An API key: "ApiKey " followed by the "encoded" value of the create response, '
            "that is base64(id:api_key). HTTPS only.",
        }


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "restapi.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An access token of POST /_security/oauth2/token. HTTPS only.",
        }


class RealmBasicScheme(OpenApiAuthenticationExtension):
    target_class = "restapi.authentication.RealmBasicAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "A username and password, tried against the realm chain in order.",
        }


class SessionPrincipalScheme(OpenApiAuthenticationExtension):
    target_class = "restapi.authentication.SessionPrincipalAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "The web UI's login session; unsafe methods also need the CSRF token.",
        }


@dataclass(frozen=True)
class Field:
    """One line of a body's outline: a field, its type, and how deep it is nested."""

    name: str
    type: str
    required: bool
    description: str
    depth: int


class _Outline:
    """Flattens a JSON schema into ``Field`` lines, resolving ``$ref`` against the components."""

    def __init__(self, components: dict):
        self.components = components

    def resolve(self, schema: dict) -> tuple[dict, str]:
        ref = schema.get("$ref", "")
        if not ref:
            return schema, ""
        name = ref.rsplit("/", 1)[-1]
        return self.components.get(name, {}), name

    def label(self, schema: dict) -> str:
        schema, ref_name = self.resolve(schema)
        variants = schema.get("oneOf") or schema.get("anyOf")
        if variants:
            label = " | ".join(self.label(variant) for variant in variants)
        elif schema.get("type") == "array":
            label = f"array of {self.label(schema.get('items', {}))}"
        elif "enum" in schema and not schema.get("type"):
            label = "one of " + ", ".join(str(value) for value in schema["enum"] if value is not None)
        else:
            label = schema.get("type", "any")
            if "format" in schema:
                label += f" ({schema['format']})"
            if isinstance(schema.get("additionalProperties"), dict) and not schema.get("properties"):
                label = f"object of {self.label(schema['additionalProperties'])}"
            if schema.get("enum"):
                label += ": " + ", ".join(str(value) for value in schema["enum"] if value is not None)
        if ref_name and schema.get("type", "object") == "object" and "enum" not in schema:
            label = f"{label} ({ref_name})"
        if schema.get("nullable"):
            label += ", nullable"
        return label

    def fields(self, schema: dict, depth: int = 0, seen: frozenset = frozenset()) -> list[Field]:
        """The nested fields of an object schema (or of an array's items), one line each."""
        ref = schema.get("$ref", "")
        if depth >= MAX_SHAPE_DEPTH or ref in seen:
            return []
        seen = seen | {ref} if ref else seen
        schema, _ = self.resolve(schema)
        if schema.get("type") == "array":
            return self.fields(schema.get("items", {}), depth, seen)
        lines = []
        for part in schema.get("allOf", ()):
            lines += self.fields(part, depth, seen)
        required = set(schema.get("required", ()))
        for name, child in schema.get("properties", {}).items():
            lines.append(self._field(name, child, name in required, depth))
            lines += self.fields(child, depth + 1, seen)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            lines.append(self._field("{any name}", extra, False, depth))
            lines += self.fields(extra, depth + 1, seen)
        return lines

    def _field(self, name: str, schema: dict, required: bool, depth: int) -> Field:
        resolved, _ = self.resolve(schema)
        description = schema.get("description") or resolved.get("description", "")
        return Field(name, self.label(schema), required, description, depth)


class _Reference:
    """What the docs page shows: each operation, with the shape of each error body shown once."""

    def __init__(self, components: dict):
        self.outline = _Outline(components)
        self.error_bodies: dict[str, list[Field]] = {}

    def body(self, content: dict, error: bool = False) -> dict | None:
        """Media types and outline of a body; JSON's schema stands for the other media types."""
        if not content:
            return None
        media_type = "application/json" if "application/json" in content else next(iter(content))
        schema = content[media_type].get("schema", {})
        label, fields = self.outline.label(schema), self.outline.fields(schema)
        if error:
            self.error_bodies.setdefault(label, fields)
            fields = []
        return {"media_types": list(content), "type": label, "fields": fields}

    def operation(self, path: str, method: str, operation: dict) -> dict:
        parameters = [
            {**parameter, "type": self.outline.label(parameter.get("schema", {}))}
            for parameter in operation.get("parameters", ())
        ]
        responses = [
            {
                "status": status,
                "description": response.get("description", ""),
                "body": self.body(response.get("content", {}), error=not status.startswith("2")),
            }
            for status, response in operation.get("responses", {}).items()
        ]
        schemes = {name for requirement in operation.get("security", ()) for name in requirement}
        return {
            "anchor": operation["operationId"],
            "method": method.upper(),
            "path": path,
            "summary": operation.get("summary", ""),
            "description": operation.get("description", ""),
            "security": sorted(schemes),
            "parameters": parameters,
            "request_body": self.body(operation.get("requestBody", {}).get("content", {})),
            "responses": responses,
        }


def generated_schema() -> dict:
    """The document ``/api/schema/`` serves, as its public (unauthenticated) reader sees it."""
    generator = spectacular_settings.DEFAULT_GENERATOR_CLASS()
    return generator.get_schema(request=None, public=True)


def _position(order: list[str], tag: str) -> int:
    return order.index(tag) if tag in order else len(order)


def api_docs(request):
    """``/api/docs/``: every operation with its parameters and the outline of its bodies."""
    schema = generated_schema()
    components = schema.get("components", {})
    reference = _Reference(components.get("schemas", {}))
    sections: dict[str, list[dict]] = {}
    for path, item in schema.get("paths", {}).items():
        for method in HTTP_METHODS:
            if method in item:
                operation = item[method]
                tag = (operation.get("tags") or ["Other"])[0]
                sections.setdefault(tag, []).append(reference.operation(path, method, operation))
    order = [tag["name"] for tag in spectacular_settings.TAGS]
    sections = dict(sorted(sections.items(), key=lambda item: _position(order, item[0])))
    context = {
        "info": schema.get("info", {}),
        "security_schemes": components.get("securitySchemes", {}),
        "error_bodies": reference.error_bodies,
        "sections": sections,
    }
    return render(request, "api_docs.html", context)
