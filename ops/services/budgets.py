"""Budget thresholds: each threshold of each budget is crossed once per period, and told once.

`budget_thresholds_evaluate` reads every current budget's status from the one budget-status rule
(`ops.selectors.portfolio`: project budgets and team / cost-centre budgets), and for each threshold
the period's spend has reached writes a `BudgetThresholdCrossing`. Its unique constraint (budget,
period start, threshold) is the "once": the row, the `budget.threshold_crossed` webhook event and
the e-mails share one transaction, so a concurrent evaluation waits on the row and then skips it,
and a mail server that cannot be reached rolls the crossing back for the next run to retry.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string

from ops.models import Budget, BudgetThresholdCrossing
from ops.selectors.portfolio import BudgetStatus, budget_statuses, scoped_budget_statuses
from projects import audit
from projects.models import Membership, Organization, Project, Role, Stage, Team
from tracker.mail import MailCounts, absolute_link, mail_each, subject_line
from webhooks.models import EventType
from webhooks.outbox import emit


@dataclass(frozen=True)
class Due:
    """A threshold the budget's period spend has reached, not yet recorded as crossed."""

    budget: Budget
    status: BudgetStatus
    threshold_pct: Decimal


def threshold_reached(*, status: BudgetStatus, threshold_pct: Decimal) -> bool:
    """Return whether the period's spend reached `threshold_pct` % of the amount (any spend, for a zero amount)."""
    if not status.amount:
        return status.spend > 0
    return status.spend * 100 >= status.amount * threshold_pct


def _statuses(organization: Organization, as_of: dt.date) -> list[BudgetStatus]:
    """Every current budget of the organization: its live projects' (overall and per category), its teams' and
    cost centres'."""
    projects = Project.objects.filter(organization=organization, archived=False).exclude(stage=Stage.RETIRED)
    statuses = [
        status
        for budgets in budget_statuses(projects=projects, as_of=as_of).values()
        for status in [*([budgets.overall] if budgets.overall else []), *budgets.categories]
    ]
    return statuses + scoped_budget_statuses(organization=organization, as_of=as_of)


def _due(organization: Organization, as_of: dt.date) -> list[Due]:
    statuses = {s.budget_id: s for s in _statuses(organization, as_of)}
    budgets = Budget.objects.filter(pk__in=statuses).select_related(
        "project__organization", "team__lead", "cost_centre__owner", "team__organization", "cost_centre__organization"
    )
    recorded = set(
        BudgetThresholdCrossing.objects.filter(
            Q(*[Q(budget_id=pk, period_start=s.period_start) for pk, s in statuses.items()], _connector=Q.OR)
        ).values_list("budget_id", "threshold_pct")
        if statuses
        else []
    )
    return [
        Due(budget, statuses[budget.pk], pct)
        for budget in budgets.order_by("pk")
        for pct in budget.alert_thresholds
        if (budget.pk, pct) not in recorded and threshold_reached(status=statuses[budget.pk], threshold_pct=pct)
    ]


def budget_recipients(budget: Budget) -> list[str]:
    """Return who hears of the budget's thresholds: the project's owners (a team's lead, a cost centre's owner) and the
    organization's managers and admins; active people with an e-mail address, each once."""
    owner = budget.owner
    if isinstance(owner, Project):
        people = [owner.business_owner, owner.technical_lead]
    else:
        people = [owner.lead if isinstance(owner, Team) else owner.owner]
    managers = Membership.objects.filter(
        organization_id=budget.organization_id, role__in=[Role.MANAGER, Role.ADMIN], user__is_active=True
    ).values_list("user__email", flat=True)
    emails = [p.email for p in people if p is not None and p.is_active] + list(managers)
    return sorted({e for e in emails if e})


def _mail(crossing: BudgetThresholdCrossing, recipients: list[str], connection: BaseEmailBackend) -> None:
    budget = crossing.budget
    organization = budget.owner.organization
    context = {
        "crossing": crossing,
        "budget": budget,
        "organization": organization,
        "link": absolute_link(budget.owner, f"/api/v1/budgets/{budget.pk}/"),  # a project's page, else the API
    }
    message = EmailMultiAlternatives(
        subject_line(
            f"[{organization.name}]", f"{budget.owner}: budget {crossing.threshold_pct.normalize():f}% reached"
        ),
        render_to_string("ops/email/budget_threshold.txt", context),
        settings.DEFAULT_FROM_EMAIL,
        recipients,
        connection=connection,
    )
    message.send()


def budget_thresholds_evaluate(*, organization: Organization, as_of: dt.date) -> MailCounts:
    """Record and tell each threshold the organization's current budgets reached by `as_of`; return the mails.

    Idempotent: a threshold crossed in a period is written once (the unique constraint), so reruns and
    concurrent runs tell nothing twice; the next period of a recurring budget tells again.
    """
    due = _due(organization, as_of)

    def send(item: Due, connection: BaseEmailBackend) -> bool:
        status = item.status
        try:
            with transaction.atomic():
                crossing = BudgetThresholdCrossing.objects.create(
                    budget=item.budget,
                    period_start=status.period_start,
                    period_end=status.period_end,
                    threshold_pct=item.threshold_pct,
                    amount=status.amount,
                    spend=status.spend,
                    crossed_on=as_of,
                )
                audit.record_batch(
                    model=BudgetThresholdCrossing,
                    organization_id=organization.pk,
                    project_id=item.budget.project_id,
                    label=f"{item.budget.owner}: {item.threshold_pct.normalize():f}% of the budget reached",
                    created=[crossing.pk],
                )
                emit(
                    organization,
                    EventType.BUDGET_THRESHOLD_CROSSED,
                    item.budget,
                    extra={
                        "threshold_pct": f"{item.threshold_pct.normalize():f}",
                        "spend": f"{status.spend:.2f}",
                        "currency": organization.currency,
                        "budget_period_start": status.period_start.isoformat(),
                        "budget_period_end": status.period_end.isoformat(),
                    },
                    dedupe_key=f"budget.threshold_crossed:budget:{item.budget.pk}:{status.period_start}:"
                    f"{item.threshold_pct.normalize():f}",
                )
                if recipients := budget_recipients(item.budget):
                    _mail(crossing, recipients, connection)
        except IntegrityError:  # a concurrent evaluation recorded (and told) it
            return False
        return True

    return mail_each(
        due, send, kind="budget_threshold", describe=lambda d: f"budget {d.budget.pk} at {d.threshold_pct}%"
    )
