"""What the menu offers of the Application privileges pages."""

from accounts.principals import principal_of_session
from application_privileges import selectors


def menu(request) -> dict:
    """The menu entry is offered to whom the list would open; asked only when a page draws the menu."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def can_list():
        return selectors.can_get_privileges(principal_of_session(request), None)

    return {"can_list_application_privileges": can_list}
