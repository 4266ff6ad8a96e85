"""Forms of the Roles and Users pages (SPEC §6).

Each form checks its fields with the same validators the services use, so an error can be shown
beside the field it is about; the services check everything again when the view calls them.
"""

import json

from django import forms

from accounts.exceptions import ValidationError
from accounts.models import Role
from accounts.privileges import CLUSTER_PRIVILEGES, MAX_DESCRIPTION_LENGTH, validate_role_descriptor
from accounts.services import check_password, validate_role_name, validate_username

# Shown first in the cluster privilege picker; the rest of the catalog sits under "More".
COMMON_CLUSTER_PRIVILEGES = (
    "all", "monitor", "manage", "manage_security", "read_security", "manage_api_key", "manage_own_api_key",
)
# Offered as one-click suggestions beside each index privileges field.
COMMON_INDEX_PRIVILEGES = (
    "read", "write", "create_doc", "index", "delete", "view_index_metadata", "monitor", "manage", "all",
)
MAX_INDEX_ROWS = 100


def split_list(text: str) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]``: the comma lists of index names and privileges."""
    return [item.strip() for item in text.split(",") if item.strip()]


def join_list(items) -> str:
    return ", ".join(items or ())


def parse_json_object(text: str, field: str) -> dict:
    """A JSON object typed into a textarea; blank means ``{}``."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as error:
        raise forms.ValidationError(f"{field} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise forms.ValidationError(f"{field} must be a JSON object")
    return value


def descriptor_error(role_name: str, descriptor: dict) -> str | None:
    """What ``validate_role_descriptor`` says about one part of a role, or None if it passes."""
    try:
        validate_role_descriptor(role_name or "role", descriptor)
    except ValidationError as error:
        # The full list of known privileges is on the page already; the message need not repeat it.
        named, cut, _ = error.reason.partition(". a privilege must be either one of the predefined")
        return f"{named}. Use a known privilege or an action pattern." if cut else error.reason
    return None


class BootstrapForm(forms.Form):
    """Bootstrap's classes on every widget, and ``is-invalid`` on the fields that have errors."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput | forms.CheckboxSelectMultiple):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{css} {widget.attrs.get('class', '')}".strip()

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs["class"] += " is-invalid"


class RoleForm(BootstrapForm):
    """A role's name, cluster privileges, run_as and metadata; index privileges are a formset."""

    name = forms.CharField(
        max_length=507, strip=False, help_text="A role name cannot be changed after it is created.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    description = forms.CharField(
        required=False, max_length=MAX_DESCRIPTION_LENGTH, strip=False,
        help_text="What the role is for, shown with it.",
        widget=forms.TextInput(attrs={"spellcheck": "true"}),
    )
    cluster = forms.MultipleChoiceField(
        label="Cluster privileges", required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(name, name) for name in sorted(CLUSTER_PRIVILEGES)],
    )
    other_cluster = forms.CharField(
        label="Other cluster privileges", required=False,
        help_text="Comma-separated cluster action patterns, e.g. cluster:monitor/main.",
        widget=forms.TextInput(attrs={"placeholder": "cluster:monitor/*", "spellcheck": "false"}),
    )
    run_as = forms.CharField(
        label="Run as privileges", required=False,
        help_text="Comma-separated usernames this role may submit requests on behalf of.",
        widget=forms.TextInput(attrs={"spellcheck": "false"}),
    )
    metadata = forms.CharField(
        required=False, help_text="A JSON object; keys must not start with _.",
        widget=forms.Textarea(attrs={"rows": 4, "class": "font-monospace", "spellcheck": "false"}),
    )

    def __init__(self, *args, role: Role | None = None, **kwargs):
        if role is not None:
            cluster = list(role.cluster)
            kwargs.setdefault("initial", {
                "name": role.name,
                "description": role.description,
                "cluster": [name for name in cluster if name in CLUSTER_PRIVILEGES],
                "other_cluster": join_list(name for name in cluster if name not in CLUSTER_PRIVILEGES),
                "run_as": join_list(role.run_as),
                "metadata": json.dumps(role.metadata, indent=2) if role.metadata else "",
            })
        super().__init__(*args, **kwargs)
        self.role = role
        if role is not None:
            self.fields["name"].disabled = True
            self.fields["name"].help_text = ""

    def cluster_groups(self) -> tuple[list, list]:
        """The picker's checkboxes: the common privileges, then the rest of the catalog."""
        boxes = list(self["cluster"])
        common = [box for box in boxes if box.data["value"] in COMMON_CLUSTER_PRIVILEGES]
        common.sort(key=lambda box: COMMON_CLUSTER_PRIVILEGES.index(box.data["value"]))
        return common, [box for box in boxes if box.data["value"] not in COMMON_CLUSTER_PRIVILEGES]

    def more_cluster_selected(self) -> bool:
        selected = set(self["cluster"].value() or ())
        return bool(selected - set(COMMON_CLUSTER_PRIVILEGES))

    def clean_name(self):
        name = self.cleaned_data["name"]
        if self.role is None:
            try:
                validate_role_name(name)
            except ValidationError as error:
                raise forms.ValidationError(error.reason) from None
        return name

    def clean_metadata(self):
        return parse_json_object(self.cleaned_data["metadata"], "metadata")

    def clean(self):
        data = super().clean()
        name = data.get("name") or (self.role.name if self.role else "")
        cluster = sorted(data.get("cluster", [])) + split_list(data.get("other_cluster", ""))
        data["cluster_privileges"] = cluster
        data["run_as_users"] = split_list(data.get("run_as", ""))
        parts = {
            "other_cluster": {"cluster": cluster},
            "run_as": {"run_as": data["run_as_users"]},
            "metadata": {"metadata": data.get("metadata", {})},
        }
        for field, part in parts.items():
            if field in self.errors:
                continue
            if error := descriptor_error(name, part):
                self.add_error(field, error)
        return data

    def descriptor(self, indices: list[dict]) -> dict:
        """The role descriptor the form describes, for ``put_role_descriptor``."""
        return {
            "cluster": self.cleaned_data["cluster_privileges"],
            "indices": indices,
            "run_as": self.cleaned_data["run_as_users"],
            "metadata": self.cleaned_data["metadata"],
            **({"description": self.cleaned_data["description"]} if self.cleaned_data["description"] else {}),
        }


class IndexPrivilegeForm(BootstrapForm):
    """One ``indices`` entry: index name patterns, privileges, and optional field and document security."""

    names = forms.CharField(
        label="Indices", required=False,
        widget=forms.TextInput(attrs={"placeholder": "logs-*, metrics-*", "spellcheck": "false"}),
    )
    privileges = forms.CharField(
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "read, view_index_metadata", "spellcheck": "false"}),
    )
    allow_restricted_indices = forms.BooleanField(
        required=False, label="Allow access to restricted indices",
    )
    granted_fields = forms.CharField(
        required=False, label="Granted fields",
        widget=forms.TextInput(attrs={"placeholder": "*", "spellcheck": "false"}),
    )
    denied_fields = forms.CharField(
        required=False, label="Denied fields", widget=forms.TextInput(attrs={"spellcheck": "false"}),
    )
    query = forms.CharField(
        required=False, label="Documents query",
        widget=forms.Textarea(attrs={"rows": 3, "class": "font-monospace", "spellcheck": "false",
                                     "placeholder": '{"term": {"team": "ops"}}'}),
    )

    def __init__(self, *args, role_name="", **kwargs):
        super().__init__(*args, **kwargs)
        self.role_name = role_name

    @staticmethod
    def initial_of(entry: dict) -> dict:
        """Form values for a stored ``indices`` entry."""
        field_security = entry.get("field_security") or {}
        query = entry.get("query")
        return {
            "names": join_list(entry.get("names")),
            "privileges": join_list(entry.get("privileges")),
            "allow_restricted_indices": bool(entry.get("allow_restricted_indices")),
            "granted_fields": join_list(field_security.get("grant")),
            "denied_fields": join_list(field_security.get("except")),
            "query": json.dumps(query, indent=2) if isinstance(query, dict) else (query or ""),
        }

    def has_field_security(self) -> bool:
        """Whether the row's field and document security part should start open."""
        return any(self[name].value() for name in ("granted_fields", "denied_fields", "query"))

    def is_blank(self) -> bool:
        """Nothing typed or ticked in the row (a removed row is emptied, then ignored)."""
        data = self.cleaned_data
        texts = ("names", "privileges", "granted_fields", "denied_fields")
        return not (any(data.get(name, "").strip() for name in texts)
                    or data.get("allow_restricted_indices") or data.get("query") is not None)

    def clean_query(self):
        text = self.cleaned_data["query"]
        return parse_json_object(text, "query") if text.strip() else None

    def clean(self):
        data = super().clean()
        if self.errors or self.is_blank():
            return data
        names, privileges = split_list(data["names"]), split_list(data["privileges"])
        if not names:
            self.add_error("names", "Enter at least one index name or pattern.")
        if not privileges:
            self.add_error("privileges", "Enter at least one privilege.")
        if not names or not privileges:
            return data
        entry = {"names": names, "privileges": privileges}
        if data.get("allow_restricted_indices"):
            entry["allow_restricted_indices"] = True
        granted = split_list(data.get("granted_fields", ""))
        denied = split_list(data.get("denied_fields", ""))
        if granted or denied:
            entry["field_security"] = {"grant": granted or ["*"], **({"except": denied} if denied else {})}
        if data.get("query") is not None:
            entry["query"] = data["query"]
        if error := descriptor_error(self.role_name, {"indices": [entry]}):
            field = "privileges" if "privilege [" in error else "names" if "index name" in error else None
            self.add_error(field, error)
        data["entry"] = entry
        return data


class BaseIndexPrivilegeFormSet(forms.BaseFormSet):
    def entries(self) -> list[dict]:
        """The ``indices`` of the role, leaving out rows left blank."""
        return [form.cleaned_data["entry"] for form in self.forms if not form.is_blank()]


IndexPrivilegeFormSet = forms.formset_factory(
    IndexPrivilegeForm, formset=BaseIndexPrivilegeFormSet, extra=0,
    max_num=MAX_INDEX_ROWS, absolute_max=MAX_INDEX_ROWS, validate_max=True,
)


def index_privilege_formset(data=None, role: Role | None = None, role_name="") -> BaseIndexPrivilegeFormSet:
    """The index privilege rows: the role's entries, or one empty row to start from."""
    initial = [IndexPrivilegeForm.initial_of(entry) for entry in role.indices] if role else []
    return IndexPrivilegeFormSet(
        data, initial=initial or [{}], prefix="indices",
        form_kwargs={"role_name": role.name if role else role_name},
    )


def role_choices():
    return [(name, name) for name in Role.objects.order_by("name").values_list("name", flat=True)]


class PasswordFields(BootstrapForm):
    """Password and confirmation, checked with the service's password rules."""

    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not a common password.",
    )
    password_confirm = forms.CharField(
        label="Confirm password", strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        password, confirm = data.get("password"), data.get("password_confirm")
        if password and confirm and password != confirm:
            self.add_error("password_confirm", "Passwords do not match.")
        elif password:
            try:
                check_password(password)
            except ValidationError as error:
                self.add_error("password", error.reason)
        return data


class UserProfileFields(BootstrapForm):
    """What an administrator edits about a native user."""

    full_name = forms.CharField(
        max_length=512, required=False, widget=forms.TextInput(),
    )
    email = forms.EmailField(
        max_length=512, required=False, widget=forms.EmailInput(),
    )
    roles = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["roles"].choices = role_choices()


class UserCreateForm(PasswordFields, UserProfileFields):
    username = forms.CharField(
        max_length=507, strip=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none",
                                      "spellcheck": "false"}),
    )
    field_order = ["username", "full_name", "email", "password", "password_confirm", "roles"]

    def clean_username(self):
        try:
            return validate_username(self.cleaned_data["username"])
        except ValidationError as error:
            raise forms.ValidationError(error.reason) from None


class UserEditForm(UserProfileFields):
    enabled = forms.BooleanField(
        required=False, label="Enabled",
        help_text="A disabled user cannot log in, and their API keys stop working.",
    )

    def __init__(self, *args, user, is_self: bool, reserved: bool = False, **kwargs):
        kwargs.setdefault("initial", {
            "full_name": user.full_name,
            "email": user.email,
            "roles": user.role_names(),
            "enabled": user.enabled,
        })
        super().__init__(*args, **kwargs)
        # Names no role has stay assigned unless unticked, as the user API keeps them.
        self.fields["roles"].choices += [(name, f"{name} (not defined)") for name in user.pending_roles]
        if is_self:
            self.fields["enabled"].disabled = True
            self.fields["enabled"].help_text = "You cannot disable your own account."
        if reserved:
            # Shown as it is; a submitted form still reaches the service, which refuses it.
            for field in self.fields.values():
                field.disabled = True


class PasswordForm(PasswordFields):
    pass
