"""Login and logout through the realm chain, and the Roles, Users and Audit log pages (SPEC §6).

Who may read or change users and roles, and who may read the audit log, is decided by
``accounts.selectors``; every change goes through ``accounts.services``, the same functions the
REST API and the commands call.
"""

import json
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import AccessMixin
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View
from django_tables2 import RequestConfig

from accounts import audit, selectors, services, throttling
from accounts.exceptions import Conflict, SecurityError, TooManyRequests
from accounts.filtersets import AuditEventFilterSet, RoleFilterSet, UserFilterSet
from accounts.forms import (
    COMMON_INDEX_PRIVILEGES,
    PasswordForm,
    RoleForm,
    UserCreateForm,
    UserEditForm,
    application_privilege_formset,
    index_privilege_formset,
)
from accounts.models import AuditEvent, Realm, Role, User
from accounts.patterns import is_literal
from accounts.principals import principal_of_session
from accounts.privileges import INDEX_PRIVILEGES, is_privilege_name
from accounts.tables import AuditEventTable, RoleTable, UserTable
from apikeys import selectors as api_key_selectors
from apikeys.models import ApiKey
from apikeys.tables import ApiKeyPaginator
from application_privileges.selectors import definitions_for
from restapi.tls import api_key_service_enabled
from tokens import selectors as token_selectors
from tokens.filtersets import user_filter

PER_PAGE = 25
AUDIT_KEYS_SHOWN = 3  # keys named in an event's row; the rest are counted


class LoginView(auth_views.LoginView):
    """Username and password, tried against the realms in order; one message for every failure.

    A username over its failure limit from this address, or one not known good from an address
    over its cap, is refused before the password is checked (``accounts.throttling``), with the
    same message whether the username exists or not.
    """

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        if username := request.POST.get("username"):
            try:
                throttling.check_password(request, username)
            except TooManyRequests as refusal:
                return self.throttled(refusal)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        throttling.password_succeeded(self.request, form.cleaned_data["username"])
        return super().form_valid(form)

    def form_invalid(self, form):
        # Counted only when the realm chain checked a password: an incomplete form guesses nothing.
        username, password = form.cleaned_data.get("username"), form.cleaned_data.get("password")
        if username and password:
            throttling.password_failed(self.request, username)
        return super().form_invalid(form)

    def throttled(self, refusal: TooManyRequests):
        seconds = refusal.retry_after
        unit = "second" if seconds == 1 else "seconds"
        username = self.request.POST.get("username", "")
        context = self.get_context_data(
            form=self.get_form_class()(self.request, initial={"username": username}),
            throttled=f"Too many failed attempts. Try again in {seconds} {unit}.",
        )
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(seconds)
        return response

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        return {**context, "api_key_service_enabled": api_key_service_enabled(self.request)}


class LogoutView(auth_views.LogoutView):
    """Logging out is a POST; a GET (a typed or bookmarked address) asks with a button instead."""

    next_page = "login"
    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect("login")
        return render(request, "accounts/logout.html")


def refused(request, title: str, reason: str, status: int = 403):
    """The permission-denied page: what was refused and why, with no controls."""
    return render(
        request, "accounts/permission_denied.html",
        {"title": title, "reason": reason, "section": "management"}, status=status,
    )


class SecurityPage(AccessMixin, View):
    """A page of Stack Management > Security: reading takes ``read_security``, views that change
    users or roles (``manages``) take ``manage_security``; anyone else gets the permission-denied page."""

    manages = False
    kind = "roles"  # what the page is about, for the permission-denied message

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.principal = principal_of_session(request)
        self.can_manage = selectors.can_manage_security(self.principal)
        if not self.allowed(**kwargs):
            verb = "manage" if self.manages else "view"
            return refused(request, f"You need permission to {verb} {self.kind}",
                           "Contact your system administrator.")
        return self.load(**kwargs) or super().dispatch(request, *args, **kwargs)

    def allowed(self, **kwargs) -> bool:
        return self.can_manage if self.manages else selectors.can_read_security(self.principal)

    def load(self, **kwargs):
        """Fetch the object the page is about once access is granted; a response here ends the request."""
        return None

    def render(self, template: str, context: dict, status: int = 200):
        context = {
            "section": "management",
            "can_manage": self.can_manage,
            "can_read": selectors.can_read_security(self.principal),
            **context,
        }
        return render(self.request, template, context, status=status)


class ListPage(SecurityPage):
    """A list: a queryset, a FilterSet and a Table, joined (NetBox's ObjectListView, thin)."""

    filterset_class = None
    table_class = None
    template_name = ""
    manage_only_columns = ()

    def get_queryset(self):
        raise NotImplementedError

    def get(self, request):
        filterset = self.filterset_class(request.GET or None, queryset=self.get_queryset())
        table = self.get_table(filterset.qs)
        self.paginate(table)
        context = {"filterset": filterset, "table": table, **self.context(filterset)}
        return self.render(self.template_name, context)

    def get_table(self, rows):
        exclude = () if self.can_manage else self.manage_only_columns
        return self.table_class(rows, exclude=exclude)

    def context(self, filterset) -> dict:
        """What the page shows beside its table."""
        return {}

    def paginate(self, table):
        RequestConfig(self.request, paginate={"per_page": PER_PAGE}).configure(table)


# --- Audit log -------------------------------------------------------------------------------


class AuditLogView(ListPage):
    """Security events, newest first; only for those the audit log rule lets in."""

    kind = "the audit log"
    filterset_class = AuditEventFilterSet
    table_class = AuditEventTable
    template_name = "accounts/audit_log.html"

    def allowed(self, **kwargs) -> bool:
        return selectors.can_view_audit_log(self.principal)

    def get_queryset(self):
        return AuditEvent.objects.all()

    def paginate(self, table):
        """Pages without a COUNT, as on the API Keys page: the log may hold millions of events."""
        RequestConfig(self.request, paginate=False).configure(table)
        table.paginate(paginator_class=ApiKeyPaginator, per_page=PER_PAGE, page=self.request.GET.get("page"))
        name_api_keys([row.record for row in table.page.object_list], self.principal)


@dataclass(frozen=True)
class AuditedApiKey:
    id: str
    name: str
    url: str  # the details page, when the key exists and the viewer may see it
    removed: bool


def name_api_keys(events: list[AuditEvent], principal, shown: int = AUDIT_KEYS_SHOWN) -> None:
    """Give each event ``audited_api_keys``, its first keys by id and name, read in one query for
    the page. A key gone since is named as the event recorded it, when it did."""
    ids = {key_id for event in events for key_id in event.api_key_ids[:shown]}
    found = {key.pk: key for key in ApiKey.objects.filter(pk__in=ids).only("id", "name", "owner_id")}
    for event in events:
        recorded_name = event.target if event.action in audit.ONE_KEY_ACTIONS else ""
        keys = []
        for key_id in event.api_key_ids[:shown]:
            key = found.get(key_id)
            visible = key is not None and api_key_selectors.can_view_api_key(principal, key)
            keys.append(AuditedApiKey(
                id=key_id,
                name=key.name if visible else recorded_name,
                url=reverse("api_key_details", args=[key_id]) if visible else "",
                removed=key is None,
            ))
        event.audited_api_keys = keys


# --- Roles -----------------------------------------------------------------------------------


def get_role(name: str) -> Role:
    role = selectors.roles([name]).first()
    if role is None:
        raise Http404(f"role [{name}] does not exist")
    return role


class RoleListView(ListPage):
    filterset_class = RoleFilterSet
    table_class = RoleTable
    template_name = "accounts/role_list.html"
    manage_only_columns = ("actions",)

    def get_queryset(self):
        return selectors.roles()


def application_grants(role: Role) -> list[dict]:
    """The role's ``applications`` entries, each privilege with what it stands for: an action
    pattern itself; a name, the actions stored under it for that application, or None when none
    are (it grants nothing). A name granted on an application pattern is left unresolved."""
    definitions = definitions_for(
        entry["application"] for entry in role.applications if is_literal(entry["application"])
    )
    grants = []
    for entry in role.applications:
        application = entry["application"]
        defined = definitions.get(application, {})
        privileges = [
            {"name": name, "is_name": is_privilege_name(name) and is_literal(application),
             "actions": defined.get(name)}
            for name in entry["privileges"]
        ]
        grants.append({**entry, "privileges": privileges})
    return grants


class RoleDetailView(SecurityPage):
    def get(self, request, name):
        role = get_role(name)
        return self.render("accounts/role_detail.html", {
            "role": role,
            "user_count": role.users.count(),
            "applications": application_grants(role),
            "metadata_json": json.dumps(role.metadata, indent=2),
        })


class RoleFormPage(SecurityPage):
    """Create or edit a role: the role form plus one formset row per ``indices`` entry and one per
    ``applications`` entry."""

    manages = True
    role = None

    def get(self, request, name=None):
        role = self.role
        rows = index_privilege_formset(role=role), application_privilege_formset(role=role)
        return self.show(RoleForm(role=role), *rows)

    def post(self, request, name=None):
        role = self.role
        form = RoleForm(request.POST, role=role)
        typed_name = request.POST.get("name", "")
        formset = index_privilege_formset(request.POST, role=role, role_name=typed_name)
        applications = application_privilege_formset(request.POST, role=role, role_name=typed_name)
        if not (form.is_valid() and formset.is_valid() and applications.is_valid()):
            return self.show(form, formset, applications, status=400)
        role_name = role.name if role else form.cleaned_data["name"]
        try:
            services.put_role_descriptor(
                role_name, form.descriptor(formset.entries(), applications.entries()),
                create_only=role is None, acting_user=request.user,
            )
        except SecurityError as error:
            form.add_error("name" if isinstance(error, Conflict) else None, error.reason)
            return self.show(form, formset, applications, status=error.status)
        messages.success(request, f"Role '{role_name}' {'created' if role is None else 'updated'}.")
        return redirect("role-list")

    def show(self, form, formset, applications, status=200):
        return self.render("accounts/role_form.html", {
            "form": form, "formset": formset, "applications": applications, "role": self.role,
            "common_index_privileges": COMMON_INDEX_PRIVILEGES,
            "index_privileges": sorted(INDEX_PRIVILEGES),
        }, status=status)


class RoleCreateView(RoleFormPage):
    pass


class ChangeableRolePage(SecurityPage):
    """A page that changes an existing role; reserved roles refuse every change."""

    manages = True

    def load(self, name):
        self.role = get_role(name)
        if self.role.built_in:
            return refused(self.request, f"The {self.role.name} role is reserved",
                           "Reserved roles are built in and cannot be changed or deleted.")
        return None


class RoleEditView(ChangeableRolePage, RoleFormPage):
    pass


class RoleDeleteView(ChangeableRolePage):
    def get(self, request, name):
        return self.show()

    def post(self, request, name):
        try:
            services.delete_role(self.role.name, acting_user=request.user)
        except SecurityError as error:
            return self.show(error=error.reason, status=error.status)
        messages.success(request, f"Role '{self.role.name}' deleted.")
        return redirect("role-list")

    def show(self, error="", status=200):
        return self.render("accounts/role_delete.html", {
            "role": self.role, "user_count": self.role.users.count(), "error": error,
        }, status=status)


# --- Users -----------------------------------------------------------------------------------


def get_user(realm: str, username: str) -> User:
    user = User.objects.select_related("realm").filter(realm__name=realm, username=username).first()
    if user is None:
        raise Http404(f"user [{username}] does not exist in realm [{realm}]")
    return user


class UserListView(ListPage):
    kind = "users"
    filterset_class = UserFilterSet
    table_class = UserTable
    template_name = "accounts/user_list.html"

    def get_queryset(self):
        return User.objects.select_related("realm").prefetch_related(
            Prefetch("roles", queryset=Role.objects.order_by("name"))
        )


class UserPage(SecurityPage):
    kind = "users"

    def load(self, realm, username):
        self.shown_user = get_user(realm, username)
        return None

    def is_self(self) -> bool:
        return self.shown_user.pk == self.request.user.pk

    def show_user(self, error="", status=200):
        """The user's page, read-only but for the buttons the viewer may use."""
        user = self.shown_user
        return self.render("accounts/user_detail.html", {
            "shown_user": user,
            "is_native": user.realm.type == Realm.NATIVE,
            "is_self": self.is_self(),
            "is_reserved": services.is_reserved_user(user),
            "roles": user.roles.order_by("name"),
            "api_key_count": user.api_keys.count(),
            "active_token_count": token_selectors.active_tokens(user).count(),
            "can_manage_tokens": token_selectors.can_manage_tokens(self.principal),
            "token_filter": user_filter(user),
            "can_change_password": selectors.can_change_password(self.principal, user.username),
            "error": error,
        }, status=status)


class UserDetailView(UserPage):
    def get(self, request, realm, username):
        return self.show_user()


class NativeUserPage(UserPage):
    """A page that changes a native user; file realm users are managed in the users file."""

    manages = True

    def load(self, realm, username):
        super().load(realm, username)
        if self.shown_user.realm.type != Realm.NATIVE:
            return refused(self.request, f"{self.shown_user.username} is managed in the users file",
                           f"Users of the {self.shown_user.realm.name} realm come from its users and "
                           "users_roles files; change them there.")
        return None

    def done(self, message: str):
        messages.success(self.request, message)
        return redirect("user-detail", realm=self.shown_user.realm.name, username=self.shown_user.username)


class UserCreateView(SecurityPage):
    kind = "users"
    manages = True

    def get(self, request):
        return self.show(UserCreateForm())

    def post(self, request):
        form = UserCreateForm(request.POST)
        if not form.is_valid():
            return self.show(form, status=400)
        data = form.cleaned_data
        try:
            user = services.create_user(
                data["username"], data["password"], roles=data["roles"], full_name=data["full_name"],
                email=data["email"], acting_user=request.user,
            )
        except SecurityError as error:
            form.add_error("username" if isinstance(error, Conflict) else None, error.reason)
            return self.show(form, status=error.status)
        messages.success(request, f"User '{user.username}' created.")
        return redirect("user-list")

    def show(self, form, status=200):
        return self.render("accounts/user_form.html", {"form": form, "creating": True}, status=status)


class UserEditView(NativeUserPage):
    """Edit a native user through PUT user; a reserved user's form is shown read-only and refused."""

    def get(self, request, realm, username):
        return self.show(self.form())

    def form(self, data=None):
        user = self.shown_user
        return UserEditForm(data, user=user, is_self=self.is_self(), reserved=services.is_reserved_user(user))

    def post(self, request, realm, username):
        user = self.shown_user
        form = self.form(request.POST)
        if not form.is_valid():
            return self.show(form, status=400)
        data = form.cleaned_data
        try:
            services.put_user(
                user.username, roles=data["roles"], full_name=data["full_name"], email=data["email"],
                metadata=user.metadata, enabled=data["enabled"], acting_user=request.user,
            )
        except SecurityError as error:
            form.add_error(None, error.reason)
            return self.show(form, status=error.status)
        return self.done(f"User '{user.username}' updated.")

    def show(self, form, status=200):
        user = self.shown_user
        context = {"form": form, "shown_user": user, "is_reserved": services.is_reserved_user(user)}
        return self.render("accounts/user_form.html", context, status=status)


class UserPasswordView(NativeUserPage):
    """Reset a native user's password: ``manage_security``, or a user changing their own."""

    def allowed(self, username, **kwargs) -> bool:
        return selectors.can_change_password(self.principal, username)

    def get(self, request, realm, username):
        return self.show(PasswordForm())

    def post(self, request, realm, username):
        user = self.shown_user
        form = PasswordForm(request.POST)
        if not form.is_valid():
            return self.show(form, status=400)
        try:
            services.change_password(user.username, form.cleaned_data["password"], acting_user=request.user)
        except SecurityError as error:
            form.add_error("password", error.reason)
            return self.show(form, status=error.status)
        if user.pk == request.user.pk:
            request.user.refresh_from_db()
            update_session_auth_hash(request, request.user)
        return self.done(f"Password of '{user.username}' changed.")

    def show(self, form, status=200):
        context = {"form": form, "shown_user": self.shown_user}
        return self.render("accounts/user_password.html", context, status=status)


class UserEnabledView(NativeUserPage):
    """Enable or disable a native user (a form button on the user's page); never one's own account."""

    def post(self, request, realm, username):
        enabled = request.POST.get("enabled") == "true"
        try:
            services.set_user_enabled(self.shown_user.username, enabled, acting_user=request.user)
        except SecurityError as error:
            return self.show_user(error=error.reason, status=error.status)
        return self.done(f"User '{self.shown_user.username}' {'enabled' if enabled else 'disabled'}.")


class UserDeleteView(NativeUserPage):
    """Delete a native user after a confirmation that says how many API keys go with them."""

    def get(self, request, realm, username):
        return self.show()

    def post(self, request, realm, username):
        user = self.shown_user
        try:
            services.delete_user(user.username, acting_user=request.user)
        except SecurityError as error:
            return self.show(error=error.reason, status=error.status)
        messages.success(request, f"User '{user.username}' deleted.")
        return redirect("user-list")

    def show(self, error="", status=200):
        user = self.shown_user
        return self.render("accounts/user_delete.html", {
            "shown_user": user,
            "is_self": self.is_self(),
            "is_reserved": services.is_reserved_user(user),
            "api_key_count": user.api_keys.count(),
            "active_api_key_count": user.api_keys.active().count(),
            "error": error,
        }, status=status)
