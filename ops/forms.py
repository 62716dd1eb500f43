"""Web forms of the ops app: they parse input; the services decide."""

import datetime as dt
import json

from django import forms
from django.core import signing
from django.core.validators import MaxValueValidator, MinValueValidator

from ops import money
from ops.catalogue import CATALOGUE
from ops.imports.prices import MAX_BOOK_BYTES, PriceSource
from ops.models import (
    DEFAULT_THRESHOLDS,
    ComponentKind,
    CostCategory,
    Environment,
    Hosting,
    MetricKind,
    ModelProvider,
    ModelSource,
    Provider,
    Recurrence,
    ReportKind,
    ReportSpan,
    RiskCategory,
    RiskStatus,
    Treatment,
)
from ops.selectors.reports import report_period
from ops.services import report_period_limits
from projects.forms import DateInput, PageForm, members_of
from projects.models import Organization

LIKELIHOOD = [(1, "1 Rare"), (2, "2 Unlikely"), (3, "3 Possible"), (4, "4 Likely"), (5, "5 Almost certain")]
IMPACT = [(1, "1 Negligible"), (2, "2 Minor"), (3, "3 Moderate"), (4, "4 Major"), (5, "5 Severe")]


class CostEntryForm(PageForm):
    id_prefix = "cost"

    date = forms.DateField(widget=DateInput)
    category = forms.ChoiceField(choices=CostCategory.choices, initial=CostCategory.INFERENCE)
    amount = forms.DecimalField(min_value=0, max_digits=14, decimal_places=2)
    # Converted to the organization's currency at the reference rate of the date (ops/money.py).
    currency = forms.ChoiceField(required=False)
    description = forms.CharField(max_length=500, required=False)
    model = forms.CharField(max_length=200, required=False)
    input_tokens = forms.IntegerField(min_value=0, required=False)
    output_tokens = forms.IntegerField(min_value=0, required=False)

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = money.currency_choices(organization)
        self.fields["currency"].initial = organization.currency

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        for name in ("input_tokens", "output_tokens"):
            data[name] = data[name] or 0
        data["currency"] = data["currency"] or None  # left out: the organization's
        return data


class UsageForm(PageForm):
    """Token usage typed by hand: priced like the usage API's (or kept unpriced when no price covers it)."""

    id_prefix = "usage"

    date = forms.DateField(widget=DateInput)
    provider = forms.ChoiceField(
        choices=[("", "The model's only provider"), *ModelProvider.choices],
        required=False,
        help_text="Who billed it: gpt-4o from OpenAI and from Azure OpenAI have their own prices.",
    )
    model = forms.CharField(max_length=200)
    input_tokens = forms.IntegerField(min_value=0, help_text="Not counting cached input tokens.")
    cached_input_tokens = forms.IntegerField(min_value=0, required=False)
    output_tokens = forms.IntegerField(min_value=0)
    requests = forms.IntegerField(min_value=0, required=False)

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        for name in ("cached_input_tokens", "requests"):
            data[name] = data[name] or 0
        return data


class RepriceForm(forms.Form):
    include_priced = forms.BooleanField(required=False, label="Reprice priced entries too")
    entries = forms.CharField(required=False, widget=forms.HiddenInput)

    def entry_ids(self) -> list[int]:
        return [int(pk) for pk in self.cleaned_data["entries"].split(",") if pk.strip().isdigit()]


class PriceImportForm(forms.Form):
    """A price book to preview (an uploaded LiteLLM file travels on, signed, to the confirming post)."""

    source = forms.ChoiceField(choices=PriceSource.choices, widget=forms.RadioSelect, initial=PriceSource.GENAI_PRICES)
    file = forms.FileField(
        required=False, label="LiteLLM price file", help_text="model_prices_and_context_window.json (LiteLLM only)."
    )
    book = forms.CharField(required=False, widget=forms.HiddenInput)
    digest = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, organization: Organization, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.salt = f"ops.price-book:{organization.pk}"

    def clean(self) -> dict:
        data = super().clean()
        self.book_data = None
        if data.get("source") != PriceSource.LITELLM:
            return data
        upload, signed = data.get("file"), data.get("book")
        try:
            if upload is not None:
                if upload.size > MAX_BOOK_BYTES:
                    raise forms.ValidationError({"file": f"At most {MAX_BOOK_BYTES // 1_000_000} MB."})
                self.book_data = json.loads(upload.read())
            elif signed:
                self.book_data = signing.loads(signed, salt=self.salt, max_age=3600)
            else:
                raise forms.ValidationError({"file": "Choose the LiteLLM price file."})
        except (ValueError, RecursionError) as exc:
            raise forms.ValidationError({"file": "Not a JSON file."}) from exc
        except signing.BadSignature as exc:
            raise forms.ValidationError("The preview expired: choose the file again.") from exc
        return data

    def signed_book(self) -> str:
        """Return the previewed book for the confirming post (empty for genai-prices, which is bundled)."""
        return "" if self.book_data is None else signing.dumps(self.book_data, salt=self.salt, compress=True)


class BudgetForm(PageForm):
    id_prefix = "budget"

    period_start = forms.DateField(widget=DateInput)
    period_end = forms.DateField(widget=DateInput)
    amount = forms.DecimalField(min_value=0, max_digits=14, decimal_places=2)
    category = forms.ChoiceField(choices=[("", "All costs"), *CostCategory.choices], required=False)
    tolerance_pct = forms.DecimalField(min_value=0, max_digits=5, decimal_places=2, initial=10, label="Tolerance %")
    recurrence = forms.ChoiceField(
        choices=Recurrence.choices,
        required=False,
        help_text="A recurring budget's first period is a whole calendar month, quarter or year.",
    )
    thresholds = forms.CharField(
        initial=", ".join(str(t) for t in DEFAULT_THRESHOLDS),
        label="Alert thresholds %",
        required=False,
        help_text="Comma-separated (empty: 50, 80, 100); 100 + tolerance always alerts too.",
    )

    def clean_thresholds(self) -> list[int | float]:
        if not self.cleaned_data["thresholds"].strip():
            return list(DEFAULT_THRESHOLDS)
        try:
            values = [float(t) for t in self.cleaned_data["thresholds"].replace(" ", "").split(",") if t]
        except ValueError:
            raise forms.ValidationError("Numbers separated by commas, e.g. 50, 80, 100.") from None
        return [int(v) if v.is_integer() else v for v in values]


class ChargebackForm(forms.Form):
    """The chargeback page's choice: a month and a grouping (cost centre, team, provider or a tag key)."""

    month = forms.DateField(widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"), input_formats=["%Y-%m"])
    group_by = forms.ChoiceField(
        choices=[("cost_centre", "Cost centre"), ("team", "Team"), ("provider", "Provider"), ("tag", "Tag")],
        initial="cost_centre",
        label="Group by",
    )
    tag = forms.CharField(required=False, max_length=63, label="Tag key (Group by Tag)")

    def clean(self):
        data = super().clean()
        if data.get("group_by") == "tag" and not data.get("tag"):
            self.add_error("tag", "Name the tag key to group by.")
        return data

    def grouping(self) -> str:
        data = self.cleaned_data
        return f"tag:{data['tag']}" if data["group_by"] == "tag" else data["group_by"]


class RiskForm(PageForm):
    id_prefix = "risk"

    title = forms.CharField(max_length=300)
    category = forms.ChoiceField(choices=RiskCategory.choices)
    likelihood = forms.TypedChoiceField(choices=LIKELIHOOD, coerce=int, initial=3)
    impact = forms.TypedChoiceField(choices=IMPACT, coerce=int, initial=3)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    treatment = forms.ChoiceField(choices=Treatment.choices, initial=Treatment.MITIGATE)
    owner = forms.ModelChoiceField(queryset=None, required=False)
    mitigation_plan = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    next_review_date = forms.DateField(widget=DateInput, required=False)

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = members_of(organization)


class RiskEditForm(RiskForm):
    id_prefix = "edit"

    status = forms.ChoiceField(choices=[(s, RiskStatus(s).label) for s in RiskStatus.active()])
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="Reassessment note",
        help_text="Recorded with the new likelihood or impact.",
    )

    def __init__(self, *args, organization: Organization, status: str = RiskStatus.OPEN, **kwargs):
        super().__init__(*args, organization=organization, **kwargs)
        if status not in RiskStatus.active():
            # Keeping an accepted risk accepted is offered; choosing open or mitigating ends the acceptance.
            self.fields["status"].choices = [(status, RiskStatus(status).label), *self.fields["status"].choices]


class CatalogueForm(forms.Form):
    key = forms.ChoiceField(choices=[(k, r.title) for k, r in CATALOGUE.items()])


class RiskAcceptForm(PageForm):
    id_prefix = "accept"

    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    expires = forms.DateField(widget=DateInput, label="Acceptance expires")


class RiskCloseForm(PageForm):
    id_prefix = "close"

    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="Why is it closed?")


class InfrastructureForm(PageForm):
    id_prefix = "infra"

    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=ComponentKind.choices)
    provider = forms.ChoiceField(choices=Provider.choices)
    hosting = forms.ChoiceField(choices=Hosting.choices, initial=Hosting.CLOUD)
    environment = forms.ChoiceField(choices=Environment.choices, initial=Environment.DEV)
    region = forms.CharField(max_length=64, required=False)
    model_name = forms.CharField(max_length=200, required=False)
    model_version = forms.CharField(max_length=100, required=False)
    model_source = forms.ChoiceField(choices=[("", "—"), *ModelSource.choices], required=False)
    frameworks = forms.CharField(required=False, help_text="Comma-separated, e.g. LangChain, vLLM.")
    gpu_type = forms.CharField(max_length=64, required=False, label="GPU type")
    gpu_count = forms.IntegerField(min_value=0, initial=0, label="GPU count")

    def clean_frameworks(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data["frameworks"].split(",") if name.strip()]


class QualityMetricForm(PageForm):
    id_prefix = "metric"

    DIRECTIONS = [("", "The metric's usual direction"), ("higher", "Higher is better"), ("lower", "Lower is better")]

    date = forms.DateField(widget=DateInput)
    metric = forms.ChoiceField(choices=MetricKind.choices)
    name = forms.CharField(max_length=100, required=False, help_text="For a custom metric.")
    value = forms.FloatField()
    threshold = forms.FloatField(required=False)
    direction = forms.ChoiceField(choices=DIRECTIONS, required=False)

    def service_fields(self) -> dict:
        data = dict(self.cleaned_data)
        direction = data.pop("direction")
        data["higher_is_better"] = {"higher": True, "lower": False}.get(direction)
        return data


class ReportRequestForm(forms.Form):
    kind = forms.ChoiceField(choices=ReportKind.choices)
    span = forms.ChoiceField(choices=ReportSpan.choices, required=False, label="Period")
    week = forms.DateField(
        widget=DateInput, label="Day", help_text="Any day of the week (Monday to Sunday) or month to report on."
    )
    notify = forms.BooleanField(required=False, label="E-mail the digest to the managers when it is ready")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Bounded before any date arithmetic, so a day such as 9999-12-31 is a form error, not an overflow.
        earliest, latest = report_period_limits()
        day = self.fields["week"]
        day.validators += [MinValueValidator(earliest), MaxValueValidator(latest)]
        day.widget.attrs.update(min=earliest.isoformat(), max=latest.isoformat())

    def period(self) -> tuple[dt.date, dt.date]:
        return report_period(day=self.cleaned_data["week"], span=self.cleaned_data["span"] or ReportSpan.WEEK)


class CostAnalyticsForm(forms.Form):
    """The cost analytics page's scope: a team or a project of the organization, and how many months back.

    Tolerant like the list filters: an invalid value is an error beside its field and narrows nothing.
    """

    MONTHS = [(3, "Last 3 months"), (6, "Last 6 months"), (12, "Last 12 months")]

    team = forms.ModelChoiceField(queryset=None, required=False, empty_label="Every team")
    project = forms.ModelChoiceField(queryset=None, required=False, empty_label="Every project")
    months = forms.TypedChoiceField(choices=MONTHS, coerce=int, required=False, initial=6, label="Period")

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = organization.teams.order_by("name")
        self.fields["project"].queryset = organization.projects.filter(archived=False).order_by("name")

    def scope(self) -> dict:
        """Return the valid choices: team and project (None when unset or invalid) and months (default: the initial)."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        months = data.get("months") or self.fields["months"].initial
        return {"team": data.get("team"), "project": data.get("project"), "months": months}
