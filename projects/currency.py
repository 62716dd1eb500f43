"""What fixes an organization's currency: amounts already recorded in it.

Until amounts are converted between currencies, changing an organization's currency would relabel
every amount it holds. projects/ offers this registry and knows nothing of money; the apps that record
amounts register what they hold from their `AppConfig.ready()` (ops/currency.py), as they register
stage gates.
"""

from collections.abc import Callable
from dataclasses import dataclass

from projects.models import Organization


@dataclass(frozen=True)
class AmountHolder:
    label: str  # plural, as a sentence names it: "costs", "budgets"
    holds: Callable[[Organization], bool]


HOLDERS: dict[str, AmountHolder] = {}


def register(holder: AmountHolder) -> AmountHolder:
    HOLDERS[holder.label] = holder
    return holder


def currency_holders(*, organization: Organization) -> list[str]:
    """Return what the organization already records in its currency (empty: the currency may change)."""
    return [holder.label for holder in HOLDERS.values() if holder.holds(organization)]
