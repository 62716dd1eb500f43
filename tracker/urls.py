from django.contrib import admin
from django.contrib.auth.views import LoginView, PasswordResetView
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from ops.api.otlp import OtlpTracesView
from ops.urls import project_pages
from projects import urls as project_urls
from projects.auth import PasswordResetRequestForm, SignInForm

urlpatterns = [
    path("admin/", admin.site.urls),
    # Sign-in says so when a back-off is in force, password reset is throttled (projects/auth.py);
    # the rest are Django's views.
    path("accounts/login/", LoginView.as_view(authentication_form=SignInForm), name="login"),
    path(
        "accounts/password_reset/",
        PasswordResetView.as_view(form_class=PasswordResetRequestForm),
        name="password_reset",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("projects.api.urls")),
    path("api/v1/", include("webhooks.api.urls")),
    path("api/v1/", include("ops.api.urls")),  # last under api/v1/: its catch-all is the API's JSON 404
    # OTLP/HTTP's default path, so an exporter needs only the base URL (docs/otlp.md).
    path("otlp/v1/traces", OtlpTracesView.as_view(), name="otlp-traces"),
    # The pages about projects keep one namespace whichever app renders them (ops: the dashboard, the list).
    path("", include(([*project_urls.urlpatterns, *project_pages], project_urls.app_name))),
    path("settings/", include("projects.settings_urls")),  # the organization's administration, for its admins
    path("", include("ops.urls")),
    path("", include("webhooks.urls")),
]
