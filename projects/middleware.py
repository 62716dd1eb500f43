"""The current organization of a signed-in user: kept in the session, one query per request."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from projects.models import Membership, Organization, Role

SESSION_KEY = "organization_id"


class CurrentOrganizationMiddleware:
    """Set `request.memberships`, `request.membership` and `request.organization` for signed-in users.

    The current organization is the one stored in the session, or the user's first one; a user
    with no membership gets None and sees an empty state.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.memberships, request.membership, request.organization = [], None, None
        if request.user.is_authenticated:
            request.memberships = list(
                Membership.objects.filter(user=request.user)
                .select_related("organization")
                .order_by("organization__name")
            )
            wanted = request.session.get(SESSION_KEY)
            chosen = next((m for m in request.memberships if m.organization_id == wanted), None)
            _set_current(request, chosen or (request.memberships[0] if request.memberships else None))
        return self.get_response(request)


def _set_current(request: HttpRequest, membership: Membership | None) -> None:
    request.membership = membership
    request.organization = membership.organization if membership else None


def organization_activate(request: HttpRequest, organization_id: int) -> Organization | None:
    """Make one of the user's organizations the current one; return None when they are not a member."""
    membership = next((m for m in request.memberships if m.organization_id == organization_id), None)
    if membership is None:
        return None
    request.session[SESSION_KEY] = organization_id
    _set_current(request, membership)
    return membership.organization


def has_role(request: HttpRequest, role: Role) -> bool:
    """Whether the user's role in the current organization is at least `role`."""
    return request.membership is not None and request.membership.has_role(role)
