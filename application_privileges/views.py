"""The Application privileges pages: the list, the form that defines or edits one, and the
confirmation that deletes one.

Who may read or write which application's privileges is decided by
``application_privileges.selectors``; every change goes through ``application_privileges.services``,
the functions the REST API calls, so the page and the API answer alike.
"""

import json

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect

from accounts.exceptions import SecurityError
from accounts.views import ListPage, SecurityPage
from application_privileges import selectors, services
from application_privileges.filtersets import ApplicationPrivilegeFilterSet
from application_privileges.forms import ApplicationPrivilegeForm
from application_privileges.tables import ApplicationPrivilegeTable

KIND = "application privileges"


class ApplicationPrivilegeListView(ListPage):
    """Every defined privilege: for those who may get them all, as the get privileges API decides."""

    kind = KIND
    filterset_class = ApplicationPrivilegeFilterSet
    table_class = ApplicationPrivilegeTable
    template_name = "application_privileges/list.html"

    def allowed(self, **kwargs) -> bool:
        return selectors.can_get_privileges(self.principal, None)

    def get_queryset(self):
        return selectors.application_privileges()

    def get_table(self, rows):
        return ApplicationPrivilegeTable(rows, rights=self.rights)

    def context(self, filterset) -> dict:
        return {"can_define": selectors.can_define_privileges(self.principal)}

    def rights(self, application: str) -> tuple[bool, bool]:
        return (
            selectors.can_put_privileges(self.principal, [application]),
            selectors.can_delete_privileges(self.principal, application),
        )


class PrivilegePage(SecurityPage):
    """A page about one stored privilege, or (``create``) one to define."""

    kind = KIND
    manages = True
    privilege = None

    def load(self, application=None, name=None):
        if application is not None:
            self.privilege = selectors.application_privileges(application, [name]).first()
            if self.privilege is None:
                raise Http404(f"application privilege [{application}:{name}] does not exist")
        return None

    def done(self, message: str):
        messages.success(self.request, message)
        return redirect("application-privilege-list")


class ApplicationPrivilegeFormView(PrivilegePage):
    """Define a privilege, or replace the actions and metadata of one, through put privileges."""

    def allowed(self, application=None, **kwargs) -> bool:
        if application is None:
            return selectors.can_define_privileges(self.principal)
        return selectors.can_put_privileges(self.principal, [application])

    def get(self, request, application=None, name=None):
        return self.show(ApplicationPrivilegeForm(privilege=self.privilege))

    def post(self, request, application=None, name=None):
        form = ApplicationPrivilegeForm(request.POST, privilege=self.privilege)
        if not form.is_valid():
            return self.show(form, status=400)
        try:
            answer = services.put_privileges(self.principal, form.body())
        except services.PrivilegeValidationFailed as error:
            for field, problem in error.problems:
                form.add_error(field, problem)
            return self.show(form, status=error.status)
        except SecurityError as error:
            form.add_error(None, error.reason)
            return self.show(form, status=error.status)
        [(application, named)] = answer.items()
        [(name, result)] = named.items()
        return self.done(f"Privilege '{application}:{name}' {'defined' if result['created'] else 'updated'}.")

    def show(self, form, status=200):
        context = {"form": form, "privilege": self.privilege}
        return self.render("application_privileges/form.html", context, status=status)


class ApplicationPrivilegeDeleteView(PrivilegePage):
    """Delete one privilege after a confirmation that says what it stood for."""

    def allowed(self, application, **kwargs) -> bool:
        return selectors.can_delete_privileges(self.principal, application)

    def get(self, request, application, name):
        return self.show()

    def post(self, request, application, name):
        try:
            services.delete_privileges(self.principal, application, [name])
        except SecurityError as error:
            return self.show(error=error.reason, status=error.status)
        return self.done(f"Privilege '{application}:{name}' deleted.")

    def show(self, error="", status=200):
        metadata_json = json.dumps(self.privilege.metadata)
        context = {"privilege": self.privilege, "metadata_json": metadata_json, "error": error}
        return self.render("application_privileges/delete.html", context, status=status)
