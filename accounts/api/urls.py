from django.urls import path

from accounts.api import kibana, views

# Names may contain "/" (sent as %2F), hence <path:...>. The fixed forms (_has_privileges,
# _password, _privileges) and the suffixed ones (_clear_cache...) come first, so that no name pattern
# captures them.
urlpatterns = [
    path("_security/user/_has_privileges", views.HasPrivilegesView.as_view(), name="has-privileges"),
    path("_security/user/_password", views.ChangePasswordView.as_view(), name="own-password"),
    path("_security/user/_privileges", views.UserPrivilegesView.as_view(), name="user-privileges"),
    path(
        "_security/user/<path:username>/_has_privileges",
        views.UserHasPrivilegesView.as_view(),
        name="user-has-privileges",
    ),
    path(
        "_security/user/<path:username>/_password", views.ChangePasswordView.as_view(), name="user-password"
    ),
    path(
        "_security/user/<path:username>/_enable",
        views.UserEnabledView.as_view(enabled=True),
        name="user-enable",
    ),
    path(
        "_security/user/<path:username>/_disable",
        views.UserEnabledView.as_view(enabled=False),
        name="user-disable",
    ),
    path("_security/_query/user", views.QueryUsersView.as_view(), name="query-users"),
    path("_security/_query/role", views.QueryRolesView.as_view(), name="query-roles"),
    path("_security/user", views.UsersView.as_view(), name="users"),
    path("_security/user/<path:username>", views.UserView.as_view(), name="user"),
    path("_security/role", views.RolesView.as_view(), name="roles"),
    path("_security/role/<path:name>/_clear_cache", views.ClearRolesCacheView.as_view(), name="roles-cache"),
    path("_security/role/<path:name>", views.RoleView.as_view(), name="role"),
    path("api/security/role", kibana.KibanaRolesView.as_view(), name="kibana-roles"),
    path("api/security/role/<path:name>", kibana.KibanaRoleView.as_view(), name="kibana-role"),
]
