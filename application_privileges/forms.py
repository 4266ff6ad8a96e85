"""The form that defines or edits one application privilege.

It only turns what was typed into a put privileges request body; the service validates it, and
the view shows each problem it reports beside the field it is about.
"""

import json

from django import forms

from accounts.forms import BootstrapForm, parse_json_object
from application_privileges.models import ApplicationPrivilege


class ApplicationPrivilegeForm(BootstrapForm):
    application = forms.CharField(
        strip=False, help_text="The application the privilege belongs to, such as myapp.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    name = forms.CharField(
        label="Privilege name", strip=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "read"}),
    )
    actions = forms.CharField(
        help_text="One action pattern per line, such as data:read/*.", required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "font-monospace", "spellcheck": "false"}),
    )
    metadata = forms.CharField(
        required=False, help_text="A JSON object; keys must not start with _.",
        widget=forms.Textarea(attrs={"rows": 4, "class": "font-monospace", "spellcheck": "false"}),
    )

    def __init__(self, *args, privilege: ApplicationPrivilege | None = None, **kwargs):
        if privilege is not None:
            kwargs.setdefault("initial", {
                "application": privilege.application,
                "name": privilege.name,
                "actions": "\n".join(privilege.actions),
                "metadata": json.dumps(privilege.metadata, indent=2) if privilege.metadata else "",
            })
        super().__init__(*args, **kwargs)
        if privilege is not None:
            self.fields["application"].disabled = self.fields["name"].disabled = True

    def clean_actions(self):
        return [line.strip() for line in self.cleaned_data["actions"].splitlines() if line.strip()]

    def clean_metadata(self):
        return parse_json_object(self.cleaned_data["metadata"], "metadata")

    def body(self) -> dict:
        """The put privileges request body the form describes."""
        data = self.cleaned_data
        privilege = {"actions": data["actions"], "metadata": data["metadata"]}
        return {data["application"]: {data["name"]: privilege}}
