"""What the menu of every page needs to know about tokens."""

from accounts.principals import principal_of_session
from tokens import selectors


def token_menu(request):
    """Whether the menu lists Access tokens: only for those the page lets in. Asked only when the
    menu is drawn (the template calls it), so pages without a menu pay nothing."""

    def can_manage_tokens():
        return request.user.is_authenticated and selectors.can_manage_tokens(principal_of_session(request))

    return {"can_manage_tokens": can_manage_tokens}
