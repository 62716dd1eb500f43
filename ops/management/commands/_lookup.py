"""What the ops commands look up from their arguments (a leading underscore: not a command itself)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.management.base import CommandError

from projects.models import Organization


def organization_and_user(*, org: str, by: str) -> tuple[Organization, AbstractBaseUser]:
    """Return the organization of slug `org` and the user `by` who acts in it, or stop with a clear error."""
    organization = Organization.objects.filter(slug=org).first()
    if organization is None:
        raise CommandError(f"No organization with slug “{org}”.")
    user = get_user_model().objects.filter(username=by).first()
    if user is None:
        raise CommandError(f"No user “{by}”.")
    return organization, user
