"""Reads of the import machinery: jobs and bill mapping rules, scoped to the caller."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from ops.imports.models import BillingMappingRule, ImportJob
from projects.models import Organization, Role
from projects.selectors import organization_list

MANAGING = [Role.MANAGER, Role.ADMIN]


def managed_organizations(*, user: AbstractBaseUser) -> QuerySet[Organization]:
    """The organizations where the user is a manager or an admin (imports are theirs)."""
    return organization_list(user=user).filter(memberships__role__in=MANAGING)


def import_job_list(*, user: AbstractBaseUser) -> QuerySet[ImportJob]:
    """The import jobs of the organizations the user manages (others' answer 404)."""
    return ImportJob.objects.filter(organization__in=managed_organizations(user=user)).select_related("created_by")


def billing_rule_list(*, user: AbstractBaseUser) -> QuerySet[BillingMappingRule]:
    """The bill mapping rules of the user's organizations (every member reads them)."""
    return BillingMappingRule.objects.filter(organization__in=organization_list(user=user)).select_related("project")
