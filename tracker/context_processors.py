"""Template context every page needs: the current organization and what the user's role allows."""

from django.http import HttpRequest

from projects.models import Role


def current_organization(request: HttpRequest) -> dict[str, object]:
    membership = getattr(request, "membership", None)
    return {
        "organization": getattr(request, "organization", None),
        "membership": membership,
        "memberships": getattr(request, "memberships", []),
        "can_contribute": membership is not None and membership.has_role(Role.CONTRIBUTOR),
        "can_manage": membership is not None and membership.has_role(Role.MANAGER),
    }
