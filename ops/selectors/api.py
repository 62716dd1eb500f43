"""The ops rows an API caller may see: everything of the organizations the caller belongs to."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from ops.models import Budget, CostEntry, InfrastructureComponent, ModelPrice, QualityMetric, Report, Risk
from projects.selectors import organization_list, project_list


def infrastructure_component_list(*, user: AbstractBaseUser) -> QuerySet[InfrastructureComponent]:
    return InfrastructureComponent.objects.filter(project__in=project_list(user=user)).select_related(
        "project__organization"
    )


def budget_list(*, user: AbstractBaseUser) -> QuerySet[Budget]:
    """Return the budgets of the caller's projects, teams and cost centres."""
    organizations = organization_list(user=user)
    return Budget.objects.filter(
        Q(project__in=project_list(user=user))
        | Q(team__organization__in=organizations)
        | Q(cost_centre__organization__in=organizations)
    ).select_related("project__organization", "team__organization", "cost_centre__organization")


def cost_entry_list(*, user: AbstractBaseUser) -> QuerySet[CostEntry]:
    return CostEntry.objects.filter(project__in=project_list(user=user)).select_related("project__organization")


def model_price_list(*, user: AbstractBaseUser) -> QuerySet[ModelPrice]:
    return ModelPrice.objects.filter(organization__in=organization_list(user=user)).select_related("organization")


def quality_metric_list(*, user: AbstractBaseUser) -> QuerySet[QualityMetric]:
    return QualityMetric.objects.filter(project__in=project_list(user=user)).select_related("project__organization")


def risk_list(*, user: AbstractBaseUser) -> QuerySet[Risk]:
    return Risk.objects.filter(organization__in=organization_list(user=user)).select_related(
        "organization", "project", "owner", "accepted_by"
    )


def report_list(*, user: AbstractBaseUser) -> QuerySet[Report]:
    return Report.objects.filter(organization__in=organization_list(user=user)).select_related("organization")
