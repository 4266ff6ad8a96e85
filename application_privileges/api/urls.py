from django.urls import path

from application_privileges.api import views

# The fixed form (_builtin) and the suffixed one come first, so that no name pattern captures them.
urlpatterns = [
    path("_security/privilege", views.PrivilegesView.as_view(), name="privileges"),
    path("_security/privilege/_builtin", views.BuiltinPrivilegesView.as_view(), name="builtin-privileges"),
    path(
        "_security/privilege/<str:application>/_clear_cache",
        views.ClearPrivilegesCacheView.as_view(),
        name="clear-privileges-cache",
    ),
    path(
        "_security/privilege/<str:application>",
        views.ApplicationPrivilegesView.as_view(),
        name="application-privileges",
    ),
    path(
        "_security/privilege/<str:application>/<str:names>",
        views.NamedPrivilegesView.as_view(),
        name="named-privileges",
    ),
]
