from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("projects.api.urls")),
    path("api/v1/", include("ops.api.urls")),
    path("", include("projects.urls")),
    path("", include("ops.urls")),
]
