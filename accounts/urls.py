from django.urls import path

from accounts import views

ROLES = "app/management/security/roles"
USERS = "app/management/security/users"
AUDIT = "app/management/security/audit"
USER = USERS + "/<str:realm>/<path:username>"  # usernames are unique per realm only

urlpatterns = [
    path("login", views.LoginView.as_view(), name="login"),
    path("logout", views.LogoutView.as_view(), name="logout"),
    # The action suffixes come before the bare name: a role name or username may contain "/".
    path(ROLES, views.RoleListView.as_view(), name="role-list"),
    path(f"{ROLES}/create", views.RoleCreateView.as_view(), name="role-create"),
    path(f"{ROLES}/<path:name>/edit", views.RoleEditView.as_view(), name="role-edit"),
    path(f"{ROLES}/<path:name>/delete", views.RoleDeleteView.as_view(), name="role-delete"),
    path(f"{ROLES}/<path:name>", views.RoleDetailView.as_view(), name="role-detail"),
    path(USERS, views.UserListView.as_view(), name="user-list"),
    path(f"{USERS}/create", views.UserCreateView.as_view(), name="user-create"),
    path(f"{USER}/edit", views.UserEditView.as_view(), name="user-edit"),
    path(f"{USER}/password", views.UserPasswordView.as_view(), name="user-change-password"),
    path(f"{USER}/enabled", views.UserEnabledView.as_view(), name="user-enabled"),
    path(f"{USER}/delete", views.UserDeleteView.as_view(), name="user-delete"),
    path(USER, views.UserDetailView.as_view(), name="user-detail"),
    path(AUDIT, views.AuditLogView.as_view(), name="audit-log"),
]
