"""Reads of the import machinery: jobs and bill mapping rules, scoped to the caller (every member reads them)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from ops.imports.models import BillingMappingRule, ImportJob
from projects.selectors import organization_list


def import_job_list(*, user: AbstractBaseUser) -> QuerySet[ImportJob]:
    """The import jobs of the user's organizations (others' answer 404)."""
    return ImportJob.objects.filter(organization__in=organization_list(user=user)).select_related("created_by")


def billing_rule_list(*, user: AbstractBaseUser) -> QuerySet[BillingMappingRule]:
    """The bill mapping rules of the user's organizations."""
    return BillingMappingRule.objects.filter(organization__in=organization_list(user=user)).select_related("project")
