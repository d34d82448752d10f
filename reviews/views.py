from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from graphs.models import Thread
from graphs.registry import get_registry


@login_required
def home(request: HttpRequest) -> HttpResponse:
    registry = get_registry()
    threads = Thread.objects.order_by("-created_at")[:50]
    return render(
        request,
        "reviews/home.html",
        {"graphs": registry.specs(), "registry_errors": registry.errors, "threads": threads},
    )
