from django.urls import path

from reviews import audit_views, views

# Thread ids are the agent's own strings and may hold slashes: <path:...>, with
# the longer routes first.
urlpatterns = [
    path("", views.home, name="home"),
    path("queue/", views.queue, name="queue"),
    path("queue/count/", views.pending_count, name="pending_count"),
    path("queue/bulk/", views.bulk_decide, name="bulk_decide"),
    path("audit/", audit_views.audit, name="audit"),
    path("audit/export.csv", audit_views.audit_export, {"fmt": "csv"}, name="audit_csv"),
    path("audit/export.jsonl", audit_views.audit_export, {"fmt": "jsonl"}, name="audit_jsonl"),
    path("graphs/<str:graph_name>/start/", views.start_run, name="start_run"),
    path("tasks/<int:pk>/", views.task_detail, name="task"),
    path("tasks/<int:pk>/decide/", views.decide, name="decide"),
    path("tasks/<int:pk>/quick/", views.quick_decide, name="quick_decide"),
    path("tasks/<int:pk>/claim/", views.claim, name="claim"),
    path("tasks/<int:pk>/assign/", views.assign, name="assign"),
    path("runs/<int:pk>/status/", views.run_status, name="run_status"),
    path("runs/<int:pk>/cancel/", views.cancel, name="cancel_run"),
    path("runs/<int:pk>/retry/", views.retry, name="retry_run"),
    path("threads/<path:thread_id>/state/", views.thread_state, name="thread_state"),
    path("threads/<path:thread_id>/replay/", views.replay, name="replay"),
    path("threads/<path:thread_id>/", views.thread_detail, name="thread"),
]
