"""Forms of the API key pages: create, update and rotate a key, and choose the keys to invalidate
(SPEC §6, §7).

Fields are checked with the very functions the create service uses, so a form error says what
the REST API would say, next to the field it is about.
"""

import difflib
import json
from datetime import timedelta

import re2
from django import forms
from django.http import QueryDict
from django.utils import timezone
from rest_framework.exceptions import ParseError

from accounts.exceptions import ValidationError
from accounts.forms import COMMON_CLUSTER_PRIVILEGES, COMMON_INDEX_PRIVILEGES
from accounts.privileges import CLUSTER_PRIVILEGES, INDEX_PRIVILEGES, validate_role_descriptors
from accounts.services import validate_metadata
from apikeys import periods
from apikeys.services import validate_api_key_name
from apikeys.timeunits import expiration_from, max_lifetime
from restapi.wire import parse_json

# Kibana's boilerplates for the role descriptors editor.
ROLE_DESCRIPTOR_BOILERPLATES = {
    "read_only": {
        "read-only-role": {"cluster": [], "indices": [{"names": ["*"], "privileges": ["read"]}]},
    },
    "write_only": {
        "write-only-role": {"cluster": [], "indices": [{"names": ["*"], "privileges": ["write"]}]},
    },
}
TIME_UNITS_HELP = (
    "Elasticsearch time units: a positive number followed by d, h, m, s, ms, micros or nanos, such as 30d"
)
# Elasticsearch's refusal of unknown privileges, which lists the whole catalog after the names.
UNKNOWN_PRIVILEGES = re2.compile(r"unknown (cluster|index) privileges? \[([^\]]*)\]\. ")
PRIVILEGE_CATALOGS = {"cluster": CLUSTER_PRIVILEGES, "index": INDEX_PRIVILEGES}
ACTION_EXAMPLES = {"cluster": "cluster:monitor/*", "index": "indices:data/read/*"}
# A page of the table holds at most 100 keys: a larger selection was not made on the page.
MAX_SELECTED_API_KEYS = 500
# The list page's query parameters kept when coming back to it after an invalidation.
LIST_PARAMETERS = ("q", "status", "unused", "owner", "realm", "sort", "page", "per_page")


def _unknown_privileges_in_words(reason: str) -> str:
    """The API's refusal of unknown privileges, for a person: each unknown name with the closest
    known ones, rather than the sixty names of the catalog. Any other reason is kept as it is."""
    match = UNKNOWN_PRIVILEGES.match(reason)
    if match is None:
        return reason
    kind, names = match.group(1), match.group(2).split(",")
    named = []
    for name in names:
        close = difflib.get_close_matches(name.lower(), PRIVILEGE_CATALOGS[kind], n=3)
        choices = " or ".join(filter(None, [", ".join(close[:-1]), close[-1]])) if close else ""
        named.append(f"'{name}' (did you mean {choices}?)" if close else f"'{name}'")
    noun = "privilege" if len(names) == 1 else "privileges"
    return (
        f"Unknown {kind} {noun} {', '.join(named)}. Use a known {kind} privilege, or a pattern over "
        f"{kind} actions such as {ACTION_EXAMPLES[kind]}."
    )


def _domain_rule(check):
    """Run a domain validation, turning its error into a form error with the same words."""
    try:
        return check()
    except ValidationError as error:
        raise forms.ValidationError(error.reason) from None


class JSONObjectField(forms.CharField):
    """A JSON object typed into a textarea, or None when empty; read as strictly as the API reads JSON."""

    widget = forms.Textarea

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return None
        try:
            parsed = parse_json(text.encode())
        except ParseError as error:
            raise forms.ValidationError(str(error.detail).replace("request body", "the value", 1)) from None
        if not isinstance(parsed, dict):
            raise forms.ValidationError("the value must be a JSON object, such as {}")
        return parsed


def _optional_expiration(text: str) -> str | None:
    """A new expiration, checked by the rule the service applies to one; None when left empty."""
    text = text.strip() or None
    if text is not None:
        _domain_rule(lambda: expiration_from(text, timezone.now()))
    return text


def _shown_json(value: dict) -> str:
    return json.dumps(value, indent=2) if value else ""


class ApiKeyFieldsForm(forms.Form):
    """What a key may do and carry, as the create and update pages both ask for it, and the
    ``API_KEY_MAX_EXPIRATION`` policy their expiration hints state (``max_lifetime_words``)."""

    role_descriptors = JSONObjectField(
        required=False,
        label="Role descriptors",
        help_text="Restrict what the key may do. Leave empty for the same access rights as yours.",
    )
    metadata = JSONObjectField(
        required=False, label="Metadata", help_text="A JSON object stored with the key."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_lifetime = max_lifetime()
        self.max_lifetime_words = self.max_lifetime and periods.in_words(self.max_lifetime)
        # For the live hint, which tells of a too long lifetime before the form is sent.
        self.max_lifetime_ms = self.max_lifetime and self.max_lifetime // timedelta(milliseconds=1)

    def privilege_picker(self) -> dict:
        """The role editor's catalogs for the picker that writes role descriptors: the common
        privileges first, the rest of each catalog under "More"."""
        return {
            kind: (common, sorted(catalog - set(common)))
            for kind, common, catalog in (
                ("cluster", COMMON_CLUSTER_PRIVILEGES, CLUSTER_PRIVILEGES),
                ("index", COMMON_INDEX_PRIVILEGES, INDEX_PRIVILEGES),
            )
        }

    def clean_role_descriptors(self):
        """Validated and normalised, as the service stores them (``names`` always a list)."""
        descriptors = self.cleaned_data["role_descriptors"]
        if descriptors is None:
            return None
        try:
            return validate_role_descriptors(descriptors)
        except ValidationError as error:
            raise forms.ValidationError(_unknown_privileges_in_words(error.reason)) from None

    def clean_metadata(self):
        return _domain_rule(lambda: validate_metadata(self.cleaned_data["metadata"]))

    def role_descriptors_for_preview(self) -> dict | None:
        """For the Preview button: the role descriptors checked alone (their errors shown, those of
        the other fields left out, as nothing is saved); None when they are wrong."""
        for name in [name for name in self.errors if name != "role_descriptors"]:
            del self.errors[name]
        if self.errors:
            return None
        return self.cleaned_data["role_descriptors"] or {}


class CreateApiKeyForm(ApiKeyFieldsForm):
    """The create page. With ``API_KEY_MAX_EXPIRATION`` set, a key must expire within it."""

    # Not stripped and not "required" here: the name rule itself says what is wrong with it.
    name = forms.CharField(strip=False, required=False)
    expiration = forms.CharField(
        required=False,
        label="Expiration",
        help_text=f"{TIME_UNITS_HELP}. Leave empty for a key that does not expire.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.max_lifetime is not None:
            self.fields["expiration"].help_text = f"{TIME_UNITS_HELP}; at most {self.max_lifetime_words}."

    def clean_name(self):
        return _domain_rule(lambda: validate_api_key_name(self.cleaned_data["name"]))

    def clean_expiration(self):
        """Checked by the very rule the service applies: with a maximum lifetime set, an empty
        expiration is refused in the service's words, next to the field."""
        text = self.cleaned_data["expiration"] or None
        _domain_rule(lambda: expiration_from(text, timezone.now()))
        return text


class UpdateApiKeyForm(ApiKeyFieldsForm):
    """The update page, filled in with the key as it is: the role descriptors and metadata shown are
    what the key gets (empty: none); an empty expiration keeps the key's own."""

    expiration = forms.CharField(
        required=False,
        label="New expiration",
        help_text=f"{TIME_UNITS_HELP}, counted from now. Leave empty to keep the current expiration.",
    )

    def __init__(self, *args, key=None, **kwargs):
        if key is not None:
            kwargs["initial"] = {
                "role_descriptors": _shown_json(key.role_descriptors),
                "metadata": _shown_json(key.metadata),
            }
        super().__init__(*args, **kwargs)

    def clean_expiration(self):
        return _optional_expiration(self.cleaned_data["expiration"])

    def changes(self) -> dict:
        """The service's keyword arguments: role descriptors and metadata always, as the page shows
        them; the expiration only when one was given."""
        changes = {
            "role_descriptors": self.cleaned_data["role_descriptors"] or {},
            "metadata": self.cleaned_data["metadata"] or {},
        }
        if self.cleaned_data["expiration"] is not None:
            changes["expiration"] = self.cleaned_data["expiration"]
        return changes


class RotateApiKeyForm(forms.Form):
    """The rotate page: the new key's expiration, or empty for the old key's lifetime from now."""

    expiration = forms.CharField(
        required=False,
        label="Expiration of the new key",
        help_text=f"{TIME_UNITS_HELP}. Leave empty to keep the current lifetime, counted from now.",
    )

    def clean_expiration(self):
        return _optional_expiration(self.cleaned_data["expiration"])


class ApiKeyIdsField(forms.Field):
    """The ids of the selected keys: any strings, de-duplicated; the service decides what each one is."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        if not value:
            return []
        if not isinstance(value, list | tuple):
            value = [value]
        return list(dict.fromkeys(item.strip() for item in value if isinstance(item, str) and item.strip()))

    def validate(self, value):
        if not value:
            raise forms.ValidationError("Select the API keys to invalidate.")
        if any("\x00" in item for item in value):
            raise forms.ValidationError("API key ids must not contain null characters.")
        if len(value) > MAX_SELECTED_API_KEYS:
            raise forms.ValidationError(
                f"Select at most {MAX_SELECTED_API_KEYS} API keys to invalidate at a time."
            )


class InvalidateApiKeysForm(forms.Form):
    """The keys to invalidate, and the list page's filters to come back to."""

    id = ApiKeyIdsField()
    back = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_back(self):
        """Only the list's own parameters survive, so the way back cannot lead anywhere else."""
        given = QueryDict(self.cleaned_data["back"])
        kept = QueryDict(mutable=True)
        for name in LIST_PARAMETERS:
            values = [value for value in given.getlist(name) if value]
            if values:
                kept.setlist(name, values)
        return kept.urlencode()
