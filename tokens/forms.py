"""What the Access tokens page invalidates: the selected pairs, or every working pair of one user."""

from django import forms

from tokens.credentials import ID_LENGTH, TOKEN_ALPHABET

MAX_SELECTED_TOKENS = 100


class InvalidateTokensForm(forms.Form):
    user = forms.CharField(required=False)
    realm = forms.CharField(required=False)

    def clean(self):
        """``id`` values (the public ids of the selected pairs), or a ``user`` with its ``realm``."""
        cleaned = super().clean()
        ids = list(dict.fromkeys(value.strip() for value in self.data.getlist("id") if value.strip()))
        user, realm = cleaned.get("user"), cleaned.get("realm")
        if ids and (user or realm):
            raise forms.ValidationError("Select tokens or a user, not both.")
        if not ids and not (user and realm):
            raise forms.ValidationError("Select the tokens to invalidate.")
        if len(ids) > MAX_SELECTED_TOKENS:
            raise forms.ValidationError(f"Select at most {MAX_SELECTED_TOKENS} tokens at a time.")
        if any(len(value) != ID_LENGTH or not set(value) <= TOKEN_ALPHABET for value in ids):
            raise forms.ValidationError("That is not the id of a token.")
        return {**cleaned, "ids": ids}
