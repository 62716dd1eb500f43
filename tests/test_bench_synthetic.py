"""The benchmarks' synthetic load-test portfolio (bench/_synthetic.py): spread, shape and idempotence."""

import pytest
from django.apps import apps

from bench._synthetic import synthetic_seed
from ops.demo import ORG_SLUG
from ops.models import CostEntry, Risk, RiskAssessment
from projects.models import Membership, Organization, Project, Role, Stage, StatusUpdate
from projects.tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def _counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def test_synthetic_projects_spread_over_ten_organizations_and_rerun_adds_nothing():
    # The demo organization is the first of the ten (the load test reads it); its manager is enough here.
    demo = OrganizationFactory(slug=ORG_SLUG)
    MembershipFactory(organization=demo, user=UserFactory(username="demo-manager"), role=Role.MANAGER)
    assert synthetic_seed(count=20, progress=False) == 20
    synthetic = Project.objects.filter(slug__startswith="synthetic-")
    assert synthetic.count() == 20
    by_org = synthetic.values("organization").distinct()
    assert by_org.count() == 10
    for org in Organization.objects.filter(pk__in=by_org):
        assert Membership.objects.filter(organization=org, role__in=[Role.MANAGER, Role.ADMIN]).exists()
    assert CostEntry.objects.filter(project__in=synthetic).count() == 20 * 200
    risks = Risk.objects.filter(project__in=synthetic)
    assert risks.count() == 20 * 10
    assert RiskAssessment.objects.filter(risk__in=risks).count() == 200
    assert StatusUpdate.objects.filter(project__in=synthetic).count() == 200
    for project in synthetic.exclude(stage=Stage.IDEATION):
        assert project.transitions.order_by("at").last().to_stage == project.stage
        assert project.infrastructure.count() in range(3, 6) and project.budgets.count() in (1, 2)
    counts = _counts()
    assert synthetic_seed(count=20, progress=False) == 0
    assert _counts() == counts
