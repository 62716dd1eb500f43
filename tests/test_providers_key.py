"""One provider vocabulary: prices keyed by provider × model × date, usage carrying its provider."""

import datetime as dt
import importlib
from decimal import Decimal

import pytest
from django.apps import apps as global_apps
from django.db import IntegrityError, transaction

from ops.models import CostEntry, InfrastructureComponent, ModelPrice, ModelProvider, Provider
from ops.selectors.portfolio import spend_by_provider
from ops.services import model_price_create, risk_signals_evaluate
from ops.tests.factories import CostEntryFactory, ModelPriceFactory
from projects.models import Role
from projects.tests.api_support import _fresh_throttle, as_role, error_fields  # noqa: F401
from projects.tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

MIGRATION = importlib.import_module("ops.migrations.0008_provider_price_key_report_revised")


def row(project, **fields):
    return {"project": project.pk, "date": "2026-03-01", "model": "gpt-4o", "input_tokens": 1_000_000,
            "output_tokens": 0, **fields}  # fmt: skip


def test_gpt4o_from_openai_and_from_azure_coexist_and_price_their_own_usage(project):
    org = project.organization
    ModelPriceFactory(organization=org, provider=ModelProvider.OPENAI, input_per_mtok=Decimal("2.50"))
    ModelPriceFactory(organization=org, provider=ModelProvider.AZURE_OPENAI, input_per_mtok=Decimal("3.00"))
    rows = [row(project, provider="openai"), row(project, provider="azure.ai.openai"), row(project, provider="azure")]
    response = as_role(org).post("/api/v1/usage/", {"entries": rows}, format="json")
    assert response.status_code == 201, response.json()
    entries = [CostEntry.objects.get(pk=pk) for pk in response.json()["created_ids"]]
    assert [(e.provider, e.amount) for e in entries] == [
        ("openai", Decimal("2.5000")),
        ("azure.ai.openai", Decimal("3.0000")),
        ("azure.ai.openai", Decimal("3.0000")),  # an alias of the vocabulary
    ]
    assert [e.price.provider for e in entries] == ["openai", "azure.ai.openai", "azure.ai.openai"]


def test_usage_naming_no_provider_takes_the_only_one_and_is_refused_when_several_price_it(project):
    org = project.organization
    ModelPriceFactory(organization=org, provider=ModelProvider.OPENAI)
    client = as_role(org)
    response = client.post("/api/v1/usage/", {"entries": [row(project)]}, format="json")
    assert response.status_code == 201 and CostEntry.objects.get().provider == "openai"
    ModelPriceFactory(organization=org, provider=ModelProvider.AZURE_OPENAI)
    response = client.post("/api/v1/usage/", {"entries": [row(project, date="2026-03-02")]}, format="json")
    assert response.status_code == 400 and error_fields(response) == {"entries.0.provider"}
    response = client.post("/api/v1/usage/", {"entries": [row(project, provider="openia")]}, format="json")
    assert response.status_code == 400 and error_fields(response) == {"entries.0.provider"}
    assert CostEntry.objects.count() == 1


def test_prices_are_unique_per_provider_model_and_day(org, manager):
    common = {"organization": org, "by": manager, "model": "gpt-4o", "input_per_mtok": Decimal(1)}
    model_price_create(provider="OpenAI", output_per_mtok=Decimal(1), valid_from=dt.date(2026, 1, 1), **common)
    model_price_create(provider="Azure OpenAI", output_per_mtok=Decimal(1), valid_from=dt.date(2026, 1, 1), **common)
    assert sorted(ModelPrice.objects.values_list("provider", flat=True)) == ["azure.ai.openai", "openai"]
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelPriceFactory(organization=org, provider="openai", valid_from=dt.date(2026, 1, 1))


def test_api_price_takes_a_provider_of_the_vocabulary(org):
    client = as_role(org, Role.MANAGER)
    body = {"model": "m", "input_per_mtok": "1", "output_per_mtok": "1", "valid_from": "2026-01-01"}
    assert client.post("/api/v1/model-prices/", {**body, "provider": "bedrock"}, format="json").status_code == 201
    assert ModelPrice.objects.get().provider == "aws.bedrock"
    response = client.post("/api/v1/model-prices/", {**body, "provider": "Acme Cloud"}, format="json")
    assert response.status_code == 400 and error_fields(response) == {"provider"}


def test_migration_maps_free_text_providers_and_fills_usage_providers(org):
    ModelPrice.objects.bulk_create(
        [
            ModelPrice(organization=org, provider="Azure OpenAI", model="a", input_per_mtok=1, output_per_mtok=1,
                       valid_from=dt.date(2026, 1, 1)),
            ModelPrice(organization=org, provider="Acme Cloud", model="b", input_per_mtok=1, output_per_mtok=1,
                       valid_from=dt.date(2026, 1, 1)),
        ]
    )  # fmt: skip
    azure = ModelPrice.objects.get(model="a")
    entry = CostEntryFactory(project=ProjectFactory(organization=org), source="usage", price=azure, provider="")
    MIGRATION.prices_to_codes(global_apps, None)
    assert dict(ModelPrice.objects.values_list("model", "provider")) == {"a": "azure.ai.openai", "b": "other"}
    entry.refresh_from_db()
    assert entry.provider == "azure.ai.openai"
    MIGRATION.codes_to_labels(global_apps, None)
    assert dict(ModelPrice.objects.values_list("model", "provider")) == {"a": "Azure OpenAI", "b": "Other"}


def test_spend_by_provider_counts_usage_for_who_billed_it_and_other_costs_for_the_infrastructure(org, settings):
    settings.RISK_SIGNAL_PROVIDER_SHARE_PCT = 60
    day = dt.date(2026, 3, 1)
    on_aws = ProjectFactory(organization=org)
    InfrastructureComponent.objects.create(project=on_aws, name="GPU", kind="compute", provider=Provider.AWS)
    CostEntryFactory(project=on_aws, date=day, amount=Decimal(10))  # a compute bill: its infrastructure's
    # Azure OpenAI usage of a project whose recorded infrastructure is AWS counts for Azure.
    CostEntryFactory(project=on_aws, date=day, amount=Decimal(90), source="usage", provider="azure.ai.openai")
    CostEntryFactory(project=on_aws, date=day, amount=Decimal(5), source="usage", provider="openai")
    assert spend_by_provider(organization=org, start=day, end=day) == {
        "aws": Decimal(10),
        "azure": Decimal(90),
        "other": Decimal(5),
    }
    risk_signals_evaluate(organization=org, today=day)
    keys = set(org.risks.filter(signal_rule="provider_concentration").values_list("signal_key", flat=True))
    assert keys == {"provider_concentration:provider:azure"}
