"""What other apps do when an organization changes, registered from their `AppConfig.ready()`.

projects/ owns organizations but not the money kept in them: ops registers how its amounts follow a
change of currency (`ops.services.fx.organization_costs_reconvert`), as it registers its gates.
"""

from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser

from projects.models import Organization

CurrencyChanged = Callable[..., object]  # (*, organization, before: str, by) — in the change's transaction
CURRENCY_CHANGED: list[CurrencyChanged] = []


def on_currency_changed(hook: CurrencyChanged) -> CurrencyChanged:
    if hook not in CURRENCY_CHANGED:
        CURRENCY_CHANGED.append(hook)
    return hook


def currency_changed(*, organization: Organization, before: str, by: AbstractBaseUser) -> None:
    for hook in CURRENCY_CHANGED:
        hook(organization=organization, before=before, by=by)
