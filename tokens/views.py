"""The Access tokens page (Stack Management > Security): every pair by its public id, and their
invalidation.

Who may open it is ``tokens.selectors.can_manage_tokens``, the rule of the REST API; every
invalidation goes through ``tokens.services.invalidate_tokens``, which audits it.
"""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

from accounts.models import User
from accounts.views import ListPage, SecurityPage, get_user
from tokens import selectors, services
from tokens.filtersets import TokenFilterSet, user_filter
from tokens.forms import InvalidateTokensForm
from tokens.models import STATES, Token
from tokens.tables import TokenTable


class TokenPage(SecurityPage):
    kind = "access tokens"
    manages = True

    def allowed(self, **kwargs) -> bool:
        return selectors.can_manage_tokens(self.principal)


def list_url(user: User | None = None) -> str:
    """The list, filtered by ``user`` when there is one."""
    return reverse("token-list") + (f"?{user_filter(user)}" if user else "")


class TokenListView(TokenPage, ListPage):
    filterset_class = TokenFilterSet
    table_class = TokenTable
    template_name = "tokens/token_list.html"

    def get_queryset(self):
        return Token.objects.select_related("user__realm").with_working()

    def context(self, filterset) -> dict:
        counts = Token.objects.state_counts()
        user = self.filtered_user(filterset)
        return {
            "active_count": selectors.active_tokens().count(),
            "states": [(state, label, counts[state]) for state, label in STATES.items()],
            "filtered_user": user,
            "filtered_user_query": user and user_filter(user),
        }

    def filtered_user(self, filterset) -> User | None:
        """The one user the filters name, whose tokens the page then offers to invalidate all at once."""
        if not filterset.is_valid() or not filterset.form.cleaned_data.get("user"):
            return None
        data = filterset.form.cleaned_data
        users = User.objects.select_related("realm").filter(username=data["user"])
        if data.get("realm"):
            users = users.filter(realm=data["realm"])
        found = list(users[:2])
        return found[0] if len(found) == 1 else None


class TokenInvalidateView(TokenPage):
    """GET asks for confirmation, naming what would stop working; POST invalidates."""

    def get(self, request):
        form = InvalidateTokensForm(request.GET)
        if not form.is_valid():
            return self.nothing_selected(form)
        ids = form.cleaned_data["ids"]
        if ids:
            selected = list(Token.objects.active().select_related("user__realm").filter(pk__in=ids))
            context = {"ids": ids, "selected": selected, "left_alone": len(ids) - len(selected)}
        else:
            user = get_user(form.cleaned_data["realm"], form.cleaned_data["user"])
            context = {"shown_user": user, "count": selectors.active_tokens(user).count()}
        return self.render("tokens/invalidate_confirm.html", context)

    def post(self, request):
        form = InvalidateTokensForm(request.POST)
        if not form.is_valid():
            return self.nothing_selected(form)
        if ids := form.cleaned_data["ids"]:
            user = None
            result = services.invalidate_tokens(self.principal, ids=ids)
        else:
            user = get_user(form.cleaned_data["realm"], form.cleaned_data["user"])
            result = services.invalidate_tokens(
                self.principal, username=user.username, realm_name=user.realm.name
            )
        count = result.invalidated
        if count:
            messages.success(request, f"Invalidated {count} access token{'' if count == 1 else 's'}.")
        else:
            messages.info(request, "Nothing was invalidated: none of these tokens works any more.")
        return redirect(list_url(user))

    def nothing_selected(self, form):
        messages.error(self.request, " ".join(form.non_field_errors()) or "Select the tokens to invalidate.")
        return redirect("token-list")
