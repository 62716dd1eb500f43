import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from ops.models import (
    Budget,
    ComponentKind,
    CostCategory,
    CostEntry,
    InfrastructureComponent,
    MetricKind,
    ModelPrice,
    ModelProvider,
    QualityMetric,
    Report,
    ReportKind,
    Risk,
    RiskAssessment,
    RiskCategory,
)
from projects.tests.factories import OrganizationFactory, ProjectFactory


class BudgetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Budget

    project = factory.SubFactory(ProjectFactory)
    period_start = dt.date(2026, 1, 1)
    period_end = dt.date(2026, 12, 31)
    amount = Decimal("120000.00")


class CostEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CostEntry

    project = factory.SubFactory(ProjectFactory)
    date = dt.date(2026, 3, 15)
    category = CostCategory.INFERENCE
    amount = Decimal("100.00")


class ModelPriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelPrice

    organization = factory.SubFactory(OrganizationFactory)
    provider = ModelProvider.OPENAI
    model = "gpt-4o"
    input_per_mtok = Decimal("2.50")
    output_per_mtok = Decimal("10.00")
    valid_from = dt.date(2025, 1, 1)


class InfrastructureComponentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InfrastructureComponent

    project = factory.SubFactory(ProjectFactory)
    name = "Inference endpoint"
    kind = ComponentKind.FOUNDATION_MODEL
    provider = "aws"


class QualityMetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = QualityMetric

    project = factory.SubFactory(ProjectFactory)
    date = dt.date(2026, 3, 1)
    metric = MetricKind.ACCURACY
    value = 0.92
    threshold = 0.9


class RiskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Risk

    project = factory.SubFactory(ProjectFactory)
    organization = factory.SelfAttribute("project.organization")
    title = factory.Sequence(lambda n: f"Risk {n}")
    category = RiskCategory.RELIABILITY
    likelihood = 3
    impact = 3


class RiskAssessmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RiskAssessment

    risk = factory.SubFactory(RiskFactory)
    assessed_at = factory.LazyFunction(timezone.now)
    likelihood = factory.SelfAttribute("risk.likelihood")
    impact = factory.SelfAttribute("risk.impact")


class ReportFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Report

    organization = factory.SubFactory(OrganizationFactory)
    kind = ReportKind.STATUS
    period_start = dt.date(2026, 3, 2)
    period_end = dt.date(2026, 3, 8)
