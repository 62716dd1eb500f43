"""The project-list figures ops computes, registered into projects.figures by `OpsConfig.ready()`."""

from ops.selectors.portfolio import NO_BUDGET_FIELDS, budget_status_of, with_list_figures
from projects.figures import Figures, register
from projects.models import Project


def _budget_fields(row: Project) -> None:
    if not hasattr(row, "budget_as_of"):  # not a row of the list (a project read on its own)
        return
    # The derived figures (% used, forecast, flags) come from the one rule, not from SQL of their own; as
    # values, which the serializer's fields write (as text they would be parsed back first).
    row.budget = budget_status_of(row)
    for name, value in (row.budget.as_values() if row.budget else NO_BUDGET_FIELDS).items():
        setattr(row, name, value)


register(Figures("portfolio", annotate=with_list_figures, complete=_budget_fields))
