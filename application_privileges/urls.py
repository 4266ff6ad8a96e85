from django.urls import path

from application_privileges import views

PRIVILEGES = "app/management/security/application_privileges"
PRIVILEGE = PRIVILEGES + "/<str:application>/<str:name>"  # neither name may hold a "/"
FORM, DELETE = views.ApplicationPrivilegeFormView.as_view(), views.ApplicationPrivilegeDeleteView.as_view()

urlpatterns = [
    path(PRIVILEGES, views.ApplicationPrivilegeListView.as_view(), name="application-privilege-list"),
    path(f"{PRIVILEGES}/create", FORM, name="application-privilege-create"),
    path(f"{PRIVILEGE}/edit", FORM, name="application-privilege-edit"),
    path(f"{PRIVILEGE}/delete", DELETE, name="application-privilege-delete"),
]
