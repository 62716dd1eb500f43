"""What makes an API page cheap: read plans kept per serializer class, decimals written without per-value set-up."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.test import override_settings
from rest_framework import serializers

from ops.selectors.portfolio import project_list_with_figures
from projects.api.serializers import ProjectSerializer
from projects.tests.factories import MembershipFactory, ProjectFactory
from tracker.api import _decimal_writer


@pytest.mark.parametrize(
    ("max_digits", "places", "rounding"),
    [(14, 2, None), (16, 2, ROUND_HALF_UP), (8, 1, None), (14, 4, None), (None, 3, None)],
)
def test_the_decimal_writer_answers_what_drf_answers(max_digits, places, rounding):
    field = serializers.DecimalField(max_digits=max_digits, decimal_places=places, rounding=rounding)
    write = _decimal_writer(field)
    values = [Decimal("0"), Decimal("12.5"), Decimal("12.345"), Decimal("12.355"), Decimal("-0.05"), Decimal("1E+3")]
    values += [Decimal("999.9999"), "210.00", "  7.25 ", 3, 2.675]
    assert [write(value) for value in values] == [field.to_representation(value) for value in values]


def test_fields_that_read_otherwise_keep_drfs_path():
    assert _decimal_writer(serializers.DecimalField(max_digits=5, decimal_places=None)) is None
    assert _decimal_writer(serializers.DecimalField(max_digits=5, decimal_places=2, coerce_to_string=False)) is None
    assert _decimal_writer(serializers.DecimalField(max_digits=5, decimal_places=2, normalize_output=True)) is None
    assert _decimal_writer(serializers.DecimalField(max_digits=5, decimal_places=2, localize=True)) is None


@pytest.mark.django_db
def test_a_page_builds_no_serializer_fields_once_its_class_has_a_plan():
    membership = MembershipFactory()
    ProjectFactory.create_batch(2, organization=membership.organization)
    rows = list(project_list_with_figures(user=membership.user))
    first = ProjectSerializer(rows[:1], many=True)
    expected = first.data
    second = ProjectSerializer(project_list_with_figures(user=membership.user)[:1], many=True)

    assert second.data == expected
    assert "fields" not in second.child.__dict__  # DRF's cached_property: never built to read


@pytest.mark.django_db
def test_a_plan_follows_a_settings_change():
    membership = MembershipFactory()
    ProjectFactory(organization=membership.organization)
    iso = ProjectSerializer(list(project_list_with_figures(user=membership.user)), many=True).data[0]
    with override_settings(REST_FRAMEWORK={"DATETIME_FORMAT": "%d/%m/%Y %H:%M"}):
        custom = ProjectSerializer(list(project_list_with_figures(user=membership.user)), many=True).data[0]
    again = ProjectSerializer(list(project_list_with_figures(user=membership.user)), many=True).data[0]
    assert "T" in iso["created_at"] and "/" in custom["created_at"] and again == iso
