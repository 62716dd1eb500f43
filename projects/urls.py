from django.urls import path
from django.views.generic import RedirectView

from projects import settings_views, views

app_name = "projects"


def _moved(pattern_name: str):
    """A page that moved: GET answers 301 to its new address, its query string kept."""
    return RedirectView.as_view(
        pattern_name=pattern_name, permanent=True, query_string=True, http_method_names=["get", "head"]
    )


# The dashboard and the project list are ops views (their figures are ops's) under these same
# names: tracker/urls.py adds ops.urls.project_pages to this namespace.

urlpatterns = [
    path("organization/", views.organization_switch, name="organization-switch"),
    path("projects/new/", views.project_create, name="create"),
    path("projects/<int:pk>/", views.project_page, name="detail"),
    path("projects/<int:pk>/edit/", views.project_edit, name="edit"),
    path("projects/<int:pk>/history/", views.project_history, name="history"),
    path("projects/<int:pk>/activity/", views.project_activity, name="project-activity"),
    path("activity/", views.organization_activity, name="activity"),
    path("projects/<int:pk>/forms/<slug:key>/", views.project_form, name="form"),
    path("projects/<int:pk>/status/", views.status_update_create, name="status-create"),
    path("projects/<int:pk>/status/history/", views.status_history, name="status-history"),
    path("projects/<int:pk>/stage/", views.project_transition, name="transition"),
    path("projects/<int:pk>/stage/preview/", views.transition_preview, name="transition-preview"),
    path("invitations/accept/<str:key>/", views.invitation_accept, name="invitation-accept"),
    path("account/tokens/", views.api_tokens, name="tokens"),
    path("account/notifications/", settings_views.notifications, name="notifications"),
    path("account/sign-out-everywhere/", views.sign_out_everywhere, name="sign-out-everywhere"),
    path("account/tokens/<int:pk>/revoke/", views.api_token_revoke, name="token-revoke"),
    # The addresses these pages had before the settings area: bookmarks and old e-mails keep working.
    path("members/", _moved("settings:members"), name="members-moved"),
    path("account/service-tokens/", _moved("settings:service-tokens"), name="service-tokens-moved"),
]
