"""The web UI's list filters: each is the API's FilterSet of its entity, presented for people.

A filter's query lives once, in the API's FilterSet (projects/api/filters.py, ops/api/filters.py). The
subclasses here keep the filters the page shows, in its order, with labels, "Any …" choices and
widgets, and add what only the page has: search, sorting, the provider and the register's default.
Unlike the API they are tolerant: a bad value is a form error beside its field and filters nothing.
"""

import django_filters
from django import forms
from django.conf import settings
from django.db.models import Exists, OuterRef, Q

from ops.api.filters import RiskFilter
from ops.models import InfrastructureComponent, Provider, RiskCategory, RiskStatus, Severity
from projects.api.filters import ProjectFilter
from projects.forms import members_of
from projects.models import Health, Industry, Organization, Stage, Team, UseCase


class PageFilterSet(django_filters.FilterSet):
    """A FilterSet of a page: only `page_filters` are read and shown, in that order."""

    page_filters: tuple[str, ...] = ()

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.filters = {name: self.filters[name] for name in self.page_filters}


class ProjectListFilter(PageFilterSet, ProjectFilter):
    """Filters, search and sorting of the project list."""

    page_filters = ("q", "stage", "health", "industry", "use_case", "team", "provider", "sort")

    # One phrase, bounded like a term of the API's ?search=.
    q = django_filters.CharFilter(method="search", label="Search", max_length=settings.SEARCH_MAX_TERM_LENGTH)
    stage = django_filters.ChoiceFilter(choices=Stage.choices, empty_label="Any stage")
    health = django_filters.ChoiceFilter(choices=Health.choices, empty_label="Any health")
    industry = django_filters.ChoiceFilter(choices=Industry.choices, empty_label="Any industry")
    use_case = django_filters.ChoiceFilter(choices=UseCase.choices, empty_label="Any use case")
    team = django_filters.ModelChoiceFilter(queryset=Team.objects.none(), empty_label="Any team")
    # Named: the label django-filter derives from a model field does not exist for a method filter.
    provider = django_filters.ChoiceFilter(
        choices=Provider.choices, method="by_provider", label="Provider", empty_label="Any provider"
    )
    sort = django_filters.OrderingFilter(
        fields=(
            ("name", "name"),
            ("stage", "stage"),
            ("health", "health"),
            ("spend_to_date", "spend"),
            ("budget_amount", "budget"),
            ("open_risks", "risks"),
            ("updated_at", "updated"),
        ),
        label="Sort by",
        empty_label="Name",
    )

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, organization=organization, **kwargs)
        self.filters["team"].queryset = organization.teams.all()

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(summary__icontains=value) | Q(slug__icontains=value))

    def by_provider(self, queryset, name, value):
        return queryset.filter(Exists(InfrastructureComponent.objects.filter(project=OuterRef("pk"), provider=value)))


ONE_TO_FIVE = [(n, str(n)) for n in range(1, 6)]
ANY_STATUS = "all"
CELL = ("likelihood", "impact")


class RiskListFilter(PageFilterSet, RiskFilter):
    """The risk register's filters: the active risks unless a status is chosen, and the heat map's cell."""

    page_filters = ("category", "severity", "project", "owner", "status", "sort", *CELL)

    category = django_filters.ChoiceFilter(choices=RiskCategory.choices, empty_label="Any category")
    # The summary cards' links (the dashboard's and the risk page's) open the register at one severity.
    severity = django_filters.ChoiceFilter(choices=Severity.choices, empty_label="Any severity")
    project = django_filters.ModelChoiceFilter(queryset=None, empty_label="Any project")
    owner = django_filters.ModelChoiceFilter(queryset=None, empty_label="Any owner")
    status = django_filters.ChoiceFilter(
        choices=[(ANY_STATUS, "Any status"), *RiskStatus.choices],
        empty_label="Open or mitigating",
        method="by_status",
    )
    sort = django_filters.OrderingFilter(
        fields=(
            ("title", "title"),
            ("project__name", "project"),
            ("score", "score"),
            ("status", "status"),
            ("owner__username", "owner"),
            ("next_review_date", "review"),
        ),
        label="Sort by",
        empty_label="Score, highest first",
    )
    # Set by a heat-map cell's link, kept (hidden) when another filter changes.
    likelihood = django_filters.TypedChoiceFilter(choices=ONE_TO_FIVE, coerce=int, widget=forms.HiddenInput)
    impact = django_filters.TypedChoiceFilter(choices=ONE_TO_FIVE, coerce=int, widget=forms.HiddenInput)

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, organization=organization, **kwargs)
        self.filters["project"].queryset = organization.projects.filter(archived=False).order_by("name")
        self.filters["owner"].queryset = members_of(organization)

    def filter_queryset(self, queryset):
        # No status chosen (or an invalid one) lists the active risks, not every risk ever closed.
        if not self.form.cleaned_data.get("status"):
            queryset = queryset.filter(status__in=RiskStatus.active())
        return super().filter_queryset(queryset)

    def by_status(self, queryset, name, value):
        return queryset if value == ANY_STATUS else queryset.filter(status=value)

    def cell(self) -> tuple[int, int] | None:
        """The heat-map cell chosen, both coordinates valid, or None."""
        self.is_valid()  # a bad value elsewhere is that field's error; the cell still counts
        chosen = tuple(self.form.cleaned_data.get(name) for name in CELL)
        return chosen if all(chosen) else None

    def without_cell(self) -> "RiskListFilter":
        """The same filters but the cell: what the heat map counts, so every other cell stays selectable."""
        data = self.data.copy()
        for name in CELL:
            data.pop(name, None)
        return type(self)(data, queryset=self.queryset, organization=self.organization)
