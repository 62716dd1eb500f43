"""The amounts ops records in an organization's currency, registered with projects.currency."""

from ops.models import Budget, CostEntry, ModelPrice
from projects.currency import AmountHolder, register

# Usage becomes cost entries (priced or not), so "costs" covers it.
register(AmountHolder("costs and usage", lambda org: CostEntry.objects.filter(project__organization=org).exists()))
register(AmountHolder("budgets", lambda org: Budget.objects.filter(project__organization=org).exists()))
register(AmountHolder("model prices", lambda org: ModelPrice.objects.filter(organization=org).exists()))
