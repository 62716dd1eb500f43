"""The serializers' fast read path answers exactly what DRF's own field-by-field path answers."""

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework import serializers

from ops.selectors.portfolio import project_list_with_figures
from projects.api.serializers import ProjectSerializer
from projects.tests.factories import MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def drf(instance) -> dict:
    """The same serializer's output through DRF's `Serializer.to_representation`."""
    serializer = ProjectSerializer(instance)
    return serializers.ModelSerializer.to_representation(serializer, instance)


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Auckland", "America/St_Johns"])
def test_the_read_plan_matches_drf_in_every_timezone(zone):
    membership = MembershipFactory()
    ProjectFactory(
        organization=membership.organization,
        stage_entered_at=dt.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=dt.UTC),
    )
    with timezone.override(zone):
        (project,) = project_list_with_figures(user=membership.user)
        fast = ProjectSerializer(project).data
        assert fast == drf(project)
    if zone != "UTC":
        assert not fast["stage_entered_at"].endswith("Z")


@override_settings(REST_FRAMEWORK={"DATETIME_FORMAT": "%d/%m/%Y %H:%M"})
def test_a_custom_datetime_format_takes_drfs_path():
    membership = MembershipFactory()
    ProjectFactory(organization=membership.organization)
    (project,) = project_list_with_figures(user=membership.user)
    assert ProjectSerializer(project).data == drf(project)


def test_only_a_value_of_the_fields_own_type_passes_unconverted():
    membership = MembershipFactory()
    ProjectFactory(organization=membership.organization)
    (project,) = project_list_with_figures(user=membership.user)
    project.open_risks, project.name, project.archived = True, 7, 0  # int(True) is 1, str(7) is "7", bool(0)
    fast = ProjectSerializer(project).data
    assert fast == drf(project)
    assert (fast["open_risks"], fast["name"], fast["archived"]) == (1, "7", False)
    assert type(fast["open_risks"]) is int
