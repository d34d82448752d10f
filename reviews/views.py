from django.contrib.auth.decorators import login_required
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from graphs.models import Checkpoint, Thread
from graphs.registry import get_registry


@login_required
def home(request: HttpRequest) -> HttpResponse:
    registry = get_registry()
    root = Checkpoint.objects.filter(thread_id=OuterRef("pk"), checkpoint_ns="")
    threads = Thread.objects.order_by("-created_at").annotate(
        checkpoint_count=Subquery(
            root.values("thread_id").annotate(n=Count("checkpoint_id")).values("n")[:1]
        ),
        latest_checkpoint_id=Subquery(root.order_by("-checkpoint_id").values("checkpoint_id")[:1]),
    )[:50]
    per_graph = dict(
        Thread.objects.values_list("graph_name").annotate(n=Count("thread_id")).order_by()
    )
    graphs = [
        {
            "name": s.name,
            "target": s.target,
            "description": s.description,
            "thread_count": per_graph.get(s.name, 0),
        }
        for s in registry.specs()
    ]
    return render(
        request,
        "reviews/home.html",
        {
            "graphs": graphs,
            "registry_errors": registry.errors,
            "config_path": registry.config_path,
            "threads": threads,
        },
    )
