"""Database constraints of the projects app: bad rows written straight through the ORM are refused."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from projects.models import Health, Membership, Project, Role, StatusUpdate
from projects.tests.factories import MembershipFactory, OrganizationFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def refused(build) -> None:
    """Assert the database refuses the write, leaving the test's transaction usable."""
    with pytest.raises(IntegrityError), transaction.atomic():
        build()


def test_project_slug_unique_per_organization():
    org = OrganizationFactory()
    ProjectFactory(organization=org, slug="chatbot")

    refused(lambda: ProjectFactory(organization=org, slug="chatbot"))

    ProjectFactory(organization=OrganizationFactory(), slug="chatbot")
    assert Project.objects.filter(slug="chatbot").count() == 2


@pytest.mark.parametrize("progress", [101, 1000])
def test_project_progress_at_most_100(progress):
    refused(lambda: ProjectFactory(progress=progress))

    assert not Project.objects.exists()


def test_project_progress_of_100_accepted():
    assert ProjectFactory(progress=100).progress == 100


@pytest.mark.parametrize(
    ("field", "value"),
    [("stage", "launched"), ("health", "purple")],
)
def test_project_stage_and_health_must_be_known(field, value):
    refused(lambda: ProjectFactory(**{field: value}))

    assert not Project.objects.exists()


def test_project_target_not_before_start():
    refused(lambda: ProjectFactory(start_date=dt.date(2026, 6, 1), target_date=dt.date(2026, 5, 31)))

    assert ProjectFactory(start_date=dt.date(2026, 6, 1), target_date=dt.date(2026, 6, 1)).pk is not None


def test_status_update_progress_at_most_100_and_health_known():
    project = ProjectFactory()
    good = {"project": project, "date": dt.date(2026, 3, 1), "health": Health.GREEN, "progress": 50, "summary": "."}

    refused(lambda: StatusUpdate.objects.create(**(good | {"progress": 101})))
    refused(lambda: StatusUpdate.objects.create(**(good | {"health": "purple"})))

    assert not StatusUpdate.objects.exists()


def test_one_membership_per_user_and_organization():
    membership = MembershipFactory(role=Role.VIEWER)

    refused(lambda: MembershipFactory(user=membership.user, organization=membership.organization, role=Role.ADMIN))

    assert Membership.objects.get(user=membership.user).role == Role.VIEWER


def test_membership_role_must_be_known():
    refused(lambda: MembershipFactory(user=UserFactory(), role="owner"))

    assert not Membership.objects.exists()


def test_organization_currency_is_iso_4217():
    refused(lambda: OrganizationFactory(currency="usd"))
    refused(lambda: OrganizationFactory(currency="US1"))

    assert OrganizationFactory(currency="EUR").currency == "EUR"
