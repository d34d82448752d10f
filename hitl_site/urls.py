from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.urls import include, path

from reviews.api import api


def favicon(request: HttpRequest) -> HttpResponse:
    """Our pages name their icon; admin's don't, and a browser then asks for
    /favicon.ico. The plain name, not the hashed one: browsers keep a
    permanent redirect, and the hashed name changes with the icon."""
    return HttpResponsePermanentRedirect(f"{settings.STATIC_URL}favicon.svg")


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("langgraph/", include("agent_server.urls")),
    path("", include("reviews.urls")),
]
