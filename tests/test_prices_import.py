"""Price books imported, not typed (issue 13, point 1): genai-prices' bundled data and a LiteLLM file.

The LiteLLM file in tests/data is the copy of `model_prices_and_context_window.json` shipped inside the
`tokencost` 0.1.26 wheel (MIT), 1,465 models, unchanged.
"""

import datetime as dt
import io
import json
import socket
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import genai_prices
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from ops.imports.prices import (
    UNDATED,
    PriceSource,
    genai_prices_book,
    litellm_book,
    model_prices_import,
    price_book_read,
)
from ops.models import (
    CostCategory,
    CostEntry,
    CostSource,
    Environment,
    ModelPrice,
    ModelProvider,
    Risk,
)
from ops.selectors.portfolio import PRICE_QUANTUM, price_book, usage_price
from ops.services import risk_signals_evaluate
from ops.tests.factories import CostEntryFactory, InfrastructureComponentFactory, ModelPriceFactory
from projects.models import AuditAction, AuditEvent
from tracker.exceptions import NotPermitted, ValidationFailed

pytestmark = pytest.mark.django_db

LITELLM_FILE = Path(__file__).parent / "data" / "litellm-model-prices.json"
UNCACHED, CACHED, OUTPUT = 12_345, 2_000, 3_210  # tokens: under every context-length tier


@pytest.fixture(scope="module")
def genai_book():
    return genai_prices_book()


@pytest.fixture(scope="module")
def litellm_data():
    return json.loads(LITELLM_FILE.read_text())


def _snapshot(org) -> tuple:
    prices = list(ModelPrice.objects.filter(organization=org).order_by("pk").values())
    return prices, AuditEvent.objects.filter(organization=org).count()


# genai-prices


# (genai-prices provider id, model id, the tracker's provider, dates): dates before and after a price change.
GENAI_CASES = [
    ("openai", "gpt-4o", ModelProvider.OPENAI, [dt.date(2025, 3, 1)]),
    ("openai", "o3", ModelProvider.OPENAI, [dt.date(2025, 6, 9), dt.date(2025, 6, 10)]),
    ("anthropic", "claude-sonnet-4-6", ModelProvider.ANTHROPIC, [dt.date(2026, 3, 12), dt.date(2026, 3, 13)]),
    (
        "deepseek",
        "deepseek-v4-flash",
        ModelProvider.DEEPSEEK,
        [dt.date(2026, 8, 16), dt.date(2026, 8, 17), dt.date(2026, 9, 10)],
    ),
    ("mistral", "mistral-large-4", ModelProvider.MISTRAL_AI, [dt.date(2026, 10, 25), dt.date(2026, 10, 29)]),
    ("aws", "amazon.nova-pro-v1:0", ModelProvider.AWS_BEDROCK, [dt.date(2026, 7, 29)]),
    ("google", "gemini-4-argon", ModelProvider.GCP_GEN_AI, [dt.date(2026, 11, 30), dt.date(2026, 12, 1)]),
]


def test_genai_prices_import_prices_usage_as_calc_price_does(org, manager, genai_book):
    result = model_prices_import(organization=org, by=manager, book=genai_book, dry_run=False)
    assert result.applied and result.new and not result.changed
    book = price_book(organization_ids=[org.pk], models={case[1] for case in GENAI_CASES})
    checked = 0
    for genai_provider, model, provider, days in GENAI_CASES:
        for day in days:
            price = book.price_on(organization_id=org.pk, provider=provider, model=model, date=day)
            ours = usage_price(price=price, input_tokens=UNCACHED, cached_input_tokens=CACHED, output_tokens=OUTPUT)
            theirs = genai_prices.calc_price(
                # genai-prices' input tokens include the cached ones, the tracker's do not.
                genai_prices.Usage(input_tokens=UNCACHED + CACHED, cache_read_tokens=CACHED, output_tokens=OUTPUT),
                model,
                provider_id=genai_provider,
                genai_request_timestamp=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
            ).total_price
            # The tracker keeps amounts to 4 decimal places, rounding half up.
            assert ours == theirs.quantize(PRICE_QUANTUM, ROUND_HALF_UP), (model, day, ours, theirs)
            checked += 1
    assert checked == 13
    # The dates are the book's: o3's cut on 2025-06-10, its first price from UNDATED.
    o3 = ModelPrice.objects.filter(organization=org, model="o3").order_by("valid_from")
    assert [(p.valid_from, p.input_per_mtok) for p in o3] == [(UNDATED, Decimal(10)), (dt.date(2025, 6, 10), 2)]


NO_NETWORK = """
import socket
def refuse(*args, **kwargs):
    raise AssertionError("network used")
socket.socket.connect = socket.socket.connect_ex = socket.create_connection = socket.getaddrinfo = refuse
"""


def test_genai_prices_is_read_offline_from_the_bundled_data(genai_book, monkeypatch):
    """Neither importing the package nor reading its data opens a connection (its updater is never started)."""
    code = NO_NETWORK + "import genai_prices\nfrom genai_prices.data import providers\nprint(len(providers))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0 and int(run.stdout) > 40, run.stderr

    def refuse(*args, **kwargs):
        raise AssertionError("network used")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    book = genai_prices_book()
    assert book.version == f"genai-prices {genai_prices.__version__}"
    assert book.prices == genai_book.prices and len(book.prices) > 400


def test_genai_prices_says_what_is_not_imported(genai_book):
    left_out = genai_book.not_imported
    for reason in (
        "tiers by context length (the base tier is imported)",
        "time-of-day prices",
        "per-request prices",
        "cache-write prices",
        "service-tier variants (batch, flex, priority)",
    ):
        assert left_out[reason] > 0, reason
    # Resellers are not in the provider vocabulary: their models are counted, not filed under "other".
    assert genai_book.unknown_providers["openrouter"] > 100
    assert {p.provider for p in genai_book.prices} <= set(ModelProvider.values) - {ModelProvider.OTHER}


def test_dry_run_writes_nothing_and_a_second_import_changes_nothing(org, manager, genai_book):
    before = _snapshot(org)
    preview = model_prices_import(organization=org, by=manager, book=genai_book, dry_run=True)
    assert not preview.applied and len(preview.new) == len(genai_book.prices) - _collapsed(genai_book)
    assert _snapshot(org) == before

    first = model_prices_import(organization=org, by=manager, book=genai_book, dry_run=False, digest=preview.digest)
    assert first.digest == preview.digest
    assert ModelPrice.objects.filter(organization=org).count() == len(first.new)
    events = AuditEvent.objects.filter(organization=org)
    assert events.count() == 1
    event = events.get()
    assert event.action == AuditAction.BATCH and len(event.changes["created"]) == len(first.new)
    assert event.changes["not_imported"]["time-of-day prices"] > 0

    after_first = _snapshot(org)
    second = model_prices_import(organization=org, by=manager, book=genai_book, dry_run=False)
    assert second.writes == 0 and second.unchanged == len(first.new) and not second.kept
    assert _snapshot(org) == after_first  # no row, no history event


def _collapsed(book) -> int:
    """Book rows that repeat their model's previous rates (only the rates are imported)."""
    seen, repeats = {}, 0
    for p in sorted(book.prices, key=lambda p: (p.provider, p.model, p.valid_from)):
        repeats += seen.get((p.provider, p.model)) == p.rates
        seen[p.provider, p.model] = p.rates
    return repeats


def test_a_price_costs_used_is_never_rewritten(org, manager, project, genai_book):
    today = dt.date.today()
    used = ModelPriceFactory(organization=org, model="gpt-4o", input_per_mtok=Decimal("9"), valid_from=UNDATED)
    entry = CostEntryFactory(project=project, model="gpt-4o", provider="openai", price=used, amount=Decimal(1))
    stamp = used.updated_at
    result = model_prices_import(organization=org, by=manager, book=genai_book, dry_run=False)
    used.refresh_from_db()
    assert (used.input_per_mtok, used.updated_at) == (Decimal("9"), stamp)
    [change] = [c for c in result.changed if c.model == "gpt-4o" and c.provider == ModelProvider.OPENAI]
    assert change.valid_from == today and change.old.input == Decimal("9") and change.new.input == Decimal("2.5")
    assert ModelPrice.objects.get(organization=org, model="gpt-4o", provider="openai", valid_from=today)
    entry.refresh_from_db()
    assert entry.price_id == used.pk and entry.amount == Decimal(1)


def test_an_import_offers_to_reprice_waiting_usage(org, manager, project, genai_book):
    waiting = CostEntryFactory(
        project=project,
        source=CostSource.USAGE,
        category=CostCategory.INFERENCE,
        model="gpt-4o",
        provider="openai",
        amount=None,
        input_tokens=1_000_000,
    )
    preview = model_prices_import(organization=org, by=manager, book=genai_book, dry_run=True)
    [change] = preview.reprice.changes
    assert (change.entry_id, change.old_amount, change.new_amount) == (waiting.pk, None, Decimal("2.5"))
    waiting.refresh_from_db()
    assert waiting.amount is None  # offered, not done: repricing is its own dry run and apply

    out = io.StringIO()
    call_command("prices_import", org=org.slug, by=manager.username, source="genai-prices", stdout=out)
    text = out.getvalue()
    assert "Repricing waiting usage would price 1 entries." in text
    assert f"manage.py reprice_usage --org {org.slug} --by {manager.username} --apply" in text
    assert "Imported:" in text and "time-of-day prices" in text


def test_price_books_are_in_dollars_other_currencies_refused(org, manager, genai_book):
    org.currency = "EUR"
    org.save()
    with pytest.raises(ValidationFailed, match="USD"):
        model_prices_import(organization=org, by=manager, book=genai_book, dry_run=True)
    assert not ModelPrice.objects.filter(organization=org).exists()


def test_a_contributor_cannot_import(org, contributor, genai_book):
    with pytest.raises(NotPermitted):
        model_prices_import(organization=org, by=contributor, book=genai_book, dry_run=True)


# LiteLLM


def test_litellm_sample_counts(litellm_data):
    book = litellm_book(litellm_data)
    assert book.models == 1465
    left = book.not_imported
    skipped_models = (
        sum(book.unknown_providers.values())
        + left["no per-token price (per second, character, image, …)"]
        + left["duplicate models once the provider prefix is dropped (the first kept)"]
    )
    assert len(book.prices) + skipped_models == 1465
    assert (len(book.prices), sum(book.unknown_providers.values())) == (780, 447)
    assert book.unknown_providers["openrouter"] == 70
    assert (
        left["batch prices"]
        and left["cache-write prices"]
        and left["tiers by context length (the base tier is imported)"]
    )
    assert all(p.starts is None for p in book.prices)  # the file carries no dates


def test_litellm_import_cache_prices_providers_and_deprecation_signal(org, manager, project, litellm_data, settings):
    InfrastructureComponentFactory(project=project, model_name="gpt-4-0613", environment=Environment.PRODUCTION)
    book = price_book_read(source=PriceSource.LITELLM, data=litellm_data)
    result = model_prices_import(organization=org, by=manager, book=book, dry_run=False)
    assert len(result.new) == 780 and not result.changed

    gpt4o = ModelPrice.objects.get(organization=org, provider=ModelProvider.OPENAI, model="gpt-4o")
    assert (gpt4o.input_per_mtok, gpt4o.cached_input_per_mtok, gpt4o.output_per_mtok) == (2.5, 1.25, 10)
    # `azure/gpt-4o` (litellm_provider azure) is Azure OpenAI's gpt-4o: a price of its own.
    azure = ModelPrice.objects.get(organization=org, provider=ModelProvider.AZURE_OPENAI, model="gpt-4o")
    assert azure.cached_input_per_mtok == Decimal("1.25") and azure.valid_from == UNDATED
    claude = ModelPrice.objects.get(organization=org, model="claude-3-5-sonnet-20241022")
    assert (claude.provider, claude.cached_input_per_mtok, claude.deprecation_date) == (
        ModelProvider.ANTHROPIC,
        Decimal("0.3"),
        dt.date(2025, 10, 1),
    )
    bedrock = ModelPrice.objects.filter(organization=org, provider=ModelProvider.AWS_BEDROCK)
    assert bedrock.count() > 100

    settings.RISK_SIGNAL_DEPRECATION_DAYS = 60
    risk_signals_evaluate(organization=org)  # gpt-4-0613's deprecation date (2025-06-06) has passed
    risk = Risk.objects.get(project=project, signal_key=f"model_deprecation:project:{project.pk}:gpt-4-0613")
    assert "2025-06-06" in risk.description

    again = model_prices_import(organization=org, by=manager, book=book, dry_run=False)
    assert again.writes == 0 and again.unchanged == 780


def test_litellm_changes_apply_from_the_import_day_and_set_deprecation_dates(org, manager):
    today = dt.date.today()
    old = ModelPriceFactory(organization=org, model="gpt-4-0613", input_per_mtok=30, output_per_mtok=60)
    data = {
        "gpt-4-0613": {
            "litellm_provider": "openai",
            "input_cost_per_token": 3e-05,
            "output_cost_per_token": 6e-05,
            "deprecation_date": "2025-06-06",
        },
        "gpt-4o": {"litellm_provider": "openai", "input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06},
    }
    ModelPriceFactory(organization=org, model="gpt-4o", valid_from=dt.date(2025, 1, 1))
    result = model_prices_import(organization=org, by=manager, book=litellm_book(data), dry_run=False)
    [deprecation] = result.deprecations
    assert (deprecation.price_id, deprecation.new) == (old.pk, dt.date(2025, 6, 6))
    [change] = result.changed
    assert (change.model, change.valid_from, change.old.input, change.new.input) == ("gpt-4o", today, 2.5, 2)
    old.refresh_from_db()
    assert old.deprecation_date == dt.date(2025, 6, 6) and old.input_per_mtok == 30
    event = AuditEvent.objects.get(organization=org, action=AuditAction.BATCH)
    assert event.changes["changed"] == [old.pk] and len(event.changes["created"]) == 1


def test_litellm_hostile_entries_are_counted_not_stored():
    book = litellm_book(
        {
            "sample_spec": {"litellm_provider": "openai", "input_cost_per_token": 1},
            "nul\x00name": {"litellm_provider": "openai", "input_cost_per_token": 1e-06},
            "huge": {"litellm_provider": "openai", "input_cost_per_token": 10**30},
            "negative": {"litellm_provider": "openai", "output_cost_per_token": -1e-06},
            "text": {"litellm_provider": "openai", "input_cost_per_token": "cheap"},
            "no-provider": {"input_cost_per_token": 1e-06},
            "fine": {"litellm_provider": "openai", "input_cost_per_token": 1e-06, "deprecation_date": "2027-02-30"},
            "list": [1, 2],
        }
    )
    assert book.prices == []
    assert book.not_imported == {"invalid model names": 1, "invalid prices": 4}
    assert book.unknown_providers == {"(none)": 1}
    with pytest.raises(ValidationFailed):
        litellm_book([1, 2])


# API and UI

SMALL_BOOK = {
    "gpt-4o": {
        "litellm_provider": "openai",
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1e-05,
        "cache_read_input_token_cost": 1.25e-06,
    },
    "claude-3-5-haiku-20241022": {
        "litellm_provider": "anthropic",
        "input_cost_per_token": 8e-07,
        "output_cost_per_token": 4e-06,
    },
}
URL = "/api/v1/model-prices/import/"


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_import_dry_run_then_apply_with_its_digest(org, manager, django_assert_num_queries):
    client = _api(manager)
    body = {"source": "litellm", "book": SMALL_BOOK}
    with django_assert_num_queries(13):
        preview = client.post(URL, body, format="json")
    assert preview.status_code == 200, preview.json()
    data = preview.json()
    assert (data["applied"], len(data["new"]), data["changed"]) == (False, 2, [])
    assert data["new"][0]["cached_input_per_mtok"] == "1.2500" and data["reprice"]["entries"] == 0
    assert not ModelPrice.objects.filter(organization=org).exists()

    stale = client.post(URL, {**body, "dry_run": False, "digest": "0" * 16}, format="json")
    assert stale.status_code == 409 and not ModelPrice.objects.filter(organization=org).exists()
    applied = client.post(URL, {**body, "dry_run": False, "digest": data["digest"]}, format="json")
    assert applied.status_code == 200 and applied.json()["applied"] is True
    assert ModelPrice.objects.filter(organization=org).count() == 2

    bigger = {**SMALL_BOOK, **{f"gpt-x-{n}": SMALL_BOOK["gpt-4o"] for n in range(40)}}
    with django_assert_num_queries(13):  # as many queries for 40 more models
        assert client.post(URL, {"source": "litellm", "book": bigger}, format="json").status_code == 200


def test_api_import_needs_a_manager(org, contributor, viewer):
    for user in (contributor, viewer):
        response = _api(user).post(URL, {"source": "genai-prices"}, format="json")
        assert response.status_code == 403
    assert not ModelPrice.objects.filter(organization=org).exists()
    assert not AuditEvent.objects.filter(organization=org).exists()


def test_api_import_refuses_a_litellm_import_without_its_file(org, manager):
    response = _api(manager).post(URL, {"source": "litellm"}, format="json")
    assert response.status_code == 400 and "book" in response.json()["errors"]


def _web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_ui_import_preview_then_confirm(org, manager, genai_book):
    client = _web(manager)
    page = reverse("ops:prices-import")
    upload = io.BytesIO(json.dumps(SMALL_BOOK).encode())
    upload.name = "model_prices_and_context_window.json"
    preview = client.post(page, {"source": "litellm", "file": upload})
    assert preview.status_code == 200
    html = preview.content.decode()
    assert 'data-testid="price-import-diff"' in html and "claude-3-5-haiku-20241022" in html
    assert "Confirm: import 2 changes" in html
    assert not ModelPrice.objects.filter(organization=org).exists()
    result = preview.context["result"]
    confirm = client.post(page, {"source": "litellm", "book": preview.context["signed_book"], "digest": result.digest})
    assert confirm.status_code == 302 and confirm.url.startswith(reverse("ops:prices") + "?preview=1")
    assert ModelPrice.objects.filter(organization=org).count() == 2

    tampered = client.post(page, {"source": "litellm", "book": "x" + preview.context["signed_book"], "digest": "d"})
    assert tampered.status_code == 200 and "expired" in tampered.content.decode()
    assert ModelPrice.objects.filter(organization=org).count() == 2

    genai = client.post(page, {"source": "genai-prices"})
    assert genai.status_code == 200 and "Time-of-day prices" in genai.content.decode()
    assert "$0.0028" in genai.content.decode()  # deepseek-v4-flash's cached input: rates keep 4 decimals
    assert "Import a price book" in client.get(reverse("ops:prices")).content.decode()


def test_ui_import_needs_a_manager(org, contributor):
    client = _web(contributor)
    page = reverse("ops:prices-import")
    assert client.get(page).status_code == 403
    assert client.post(page, {"source": "genai-prices", "digest": "x"}).status_code == 403
    assert not ModelPrice.objects.filter(organization=org).exists()
    assert "Import a price book" not in client.get(reverse("ops:prices")).content.decode()


def test_command_dry_run_prints_the_diff_and_writes_nothing(org, manager):
    out = io.StringIO()
    call_command(
        "prices_import",
        str(LITELLM_FILE),
        org=org.slug,
        by=manager.username,
        source="litellm",
        dry_run=True,
        stdout=out,
    )
    text = out.getvalue()
    assert "LiteLLM price file: 1465 models read, 780 prices to write." in text
    assert "New models (780):" in text and "Dry run: nothing written" in text
    assert "providers outside the tracker's vocabulary: 447 models" in text
    assert (
        "  openai\tgpt-4-0613\tfrom 2000-01-01\tinput 30.0000, cached —, output 60.0000; deprecated 2025-06-06" in text
    )
    assert not ModelPrice.objects.filter(organization=org).exists()
    assert not CostEntry.objects.exists()
