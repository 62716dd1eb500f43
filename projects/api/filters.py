"""Query-string filters of the projects resources."""

import django_filters as filters

from projects.models import ApiToken, Invitation, Membership, Project, StageTransition, StatusUpdate, Team


# Foreign keys filter by plain id, so an id of another organization matches nothing rather than
# answering differently from an id that does not exist.
def id_filter(field: str) -> filters.NumberFilter:
    return filters.NumberFilter(field_name=f"{field}_id")


class ProjectFilter(filters.FilterSet):
    organization = id_filter("organization")
    team = id_filter("team")
    start_date_after = filters.DateFilter(field_name="start_date", lookup_expr="gte")
    start_date_before = filters.DateFilter(field_name="start_date", lookup_expr="lte")
    target_date_after = filters.DateFilter(field_name="target_date", lookup_expr="gte")
    target_date_before = filters.DateFilter(field_name="target_date", lookup_expr="lte")

    class Meta:
        model = Project
        fields = [
            "organization",
            "team",
            "stage",
            "health",
            "industry",
            "use_case",
            "data_classification",
            "ai_act_tier",
            "archived",
        ]


class StatusUpdateFilter(filters.FilterSet):
    project = id_filter("project")
    date_after = filters.DateFilter(field_name="date", lookup_expr="gte")
    date_before = filters.DateFilter(field_name="date", lookup_expr="lte")

    class Meta:
        model = StatusUpdate
        fields = ["project", "health"]


class StageTransitionFilter(filters.FilterSet):
    project = id_filter("project")

    class Meta:
        model = StageTransition
        fields = ["project", "from_stage", "to_stage"]


class TeamFilter(filters.FilterSet):
    organization = id_filter("organization")

    class Meta:
        model = Team
        fields = ["organization"]


class MembershipFilter(filters.FilterSet):
    organization = id_filter("organization")

    class Meta:
        model = Membership
        fields = ["organization", "role"]


class ServiceTokenFilter(filters.FilterSet):
    organization = id_filter("organization")

    class Meta:
        model = ApiToken
        fields = ["organization", "scope"]


class InvitationFilter(filters.FilterSet):
    organization = id_filter("organization")

    class Meta:
        model = Invitation
        fields = ["organization", "role"]
