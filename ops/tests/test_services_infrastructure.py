"""Infrastructure components and quality metrics, against PostgreSQL."""

import datetime as dt

import pytest

from ops.models import (
    ComponentKind,
    Environment,
    Hosting,
    InfrastructureComponent,
    MetricKind,
    ModelSource,
    Provider,
    QualityMetric,
)
from ops.services import infrastructure_component_create, quality_metric_create
from projects.models import Role
from projects.tests.factories import member
from tracker.exceptions import NotPermitted, ValidationFailed

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 3, 1)


# infrastructure_component_create


def test_infrastructure_component_create_records_a_hybrid_deployment(project, contributor):
    component = infrastructure_component_create(
        project=project,
        by=contributor,
        name="Local Llama with cloud fallback",
        kind=ComponentKind.FOUNDATION_MODEL,
        provider=Provider.ON_PREMISES,
        hosting=Hosting.HYBRID,
        environment=Environment.PRODUCTION,
        model_name="Llama 3.1 70B",
        model_source=ModelSource.OPEN_WEIGHTS,
        frameworks=["vLLM", "LangChain"],
        gpu_type="H100",
        gpu_count=4,
    )

    stored = InfrastructureComponent.objects.get(pk=component.pk)
    assert (stored.hosting, stored.frameworks, stored.gpu_count) == (Hosting.HYBRID, ["vLLM", "LangChain"], 4)


@pytest.mark.parametrize("frameworks", ["LangChain", ["LangChain", ""], ["  "], [3]])
def test_infrastructure_component_create_refuses_frameworks_that_are_not_a_list_of_names(
    project, contributor, frameworks
):
    with pytest.raises(ValidationFailed) as excinfo:
        infrastructure_component_create(
            project=project,
            by=contributor,
            name="x",
            kind=ComponentKind.ORCHESTRATION,
            provider=Provider.AWS,
            frameworks=frameworks,
        )

    assert list(excinfo.value.errors) == ["frameworks"]
    assert not InfrastructureComponent.objects.exists()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"kind": "toaster"}, "kind"),
        ({"provider": "ibm_mainframe"}, "provider"),
        ({"hosting": "orbit"}, "hosting"),
        ({"environment": "qa"}, "environment"),
        ({"model_source": "stolen"}, "model_source"),
        ({"gpu_count": -1}, "gpu_count"),
        ({"name": ""}, "name"),
    ],
)
def test_infrastructure_component_create_refuses_bad_values_and_writes_nothing(project, contributor, values, field):
    good = {"name": "Endpoint", "kind": ComponentKind.COMPUTE, "provider": Provider.AZURE}

    with pytest.raises(ValidationFailed) as excinfo:
        infrastructure_component_create(project=project, by=contributor, **(good | values))

    assert list(excinfo.value.errors) == [field]
    assert not InfrastructureComponent.objects.exists()


def test_infrastructure_component_create_refuses_an_unknown_field(project, contributor):
    with pytest.raises(ValidationFailed) as excinfo:
        infrastructure_component_create(
            project=project, by=contributor, name="x", kind=ComponentKind.COMPUTE, provider=Provider.GCP, cost=3
        )

    assert excinfo.value.errors == {"cost": ["Unknown field."]}
    assert not InfrastructureComponent.objects.exists()


def test_infrastructure_component_create_refused_to_a_viewer(org, project):
    with pytest.raises(NotPermitted):
        infrastructure_component_create(
            project=project, by=member(org, Role.VIEWER), name="x", kind=ComponentKind.COMPUTE, provider=Provider.GCP
        )

    assert not InfrastructureComponent.objects.exists()


# quality_metric_create


@pytest.mark.parametrize(
    ("metric", "higher_is_better"),
    [
        (MetricKind.ACCURACY, True),
        (MetricKind.USER_SATISFACTION, True),
        (MetricKind.HALLUCINATION_RATE, False),
        (MetricKind.TOXICITY_RATE, False),
        (MetricKind.LATENCY_P95_MS, False),
    ],
)
def test_quality_metric_direction_defaults_to_the_metrics_usual_one(project, contributor, metric, higher_is_better):
    record = quality_metric_create(project=project, by=contributor, date=DAY, metric=metric, value=0.5, threshold=0.4)

    assert QualityMetric.objects.get(pk=record.pk).higher_is_better is higher_is_better


def test_quality_metric_custom_defaults_to_higher_is_better_and_keeps_its_name(project, contributor):
    record = quality_metric_create(
        project=project, by=contributor, date=DAY, metric=MetricKind.CUSTOM, name="  Groundedness  ", value=0.8
    )

    stored = QualityMetric.objects.get(pk=record.pk)
    assert (stored.name, stored.higher_is_better, stored.label) == ("Groundedness", True, "Groundedness")


def test_quality_metric_explicit_direction_wins(project, contributor):
    record = quality_metric_create(
        project=project, by=contributor, date=DAY, metric=MetricKind.LATENCY_P95_MS, value=900, higher_is_better=True
    )

    assert QualityMetric.objects.get(pk=record.pk).higher_is_better is True


@pytest.mark.parametrize("name", ["", "   "])
def test_quality_metric_custom_needs_a_name(project, contributor, name):
    with pytest.raises(ValidationFailed) as excinfo:
        quality_metric_create(project=project, by=contributor, date=DAY, metric=MetricKind.CUSTOM, name=name, value=1)

    assert excinfo.value.errors == {"name": ["Name the custom metric."]}
    assert not QualityMetric.objects.exists()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"metric": "vibes"}, "metric"),
        ({"value": float("nan")}, "value"),
        ({"value": float("inf")}, "value"),
        ({"threshold": float("-inf")}, "threshold"),
    ],
)
def test_quality_metric_refuses_bad_values_and_writes_nothing(project, contributor, values, field):
    good = {"date": DAY, "metric": MetricKind.ACCURACY, "value": 0.9, "threshold": 0.8}

    with pytest.raises(ValidationFailed) as excinfo:
        quality_metric_create(project=project, by=contributor, **(good | values))

    assert list(excinfo.value.errors) == [field]
    assert not QualityMetric.objects.exists()


def test_quality_metric_refused_to_a_viewer(org, project):
    with pytest.raises(NotPermitted):
        quality_metric_create(
            project=project, by=member(org, Role.VIEWER), date=DAY, metric=MetricKind.ACCURACY, value=0.9
        )

    assert not QualityMetric.objects.exists()
