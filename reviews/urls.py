from django.urls import path

from reviews import views

# Thread ids are the agent's own strings and may hold slashes: <path:...>, with
# the longer routes first.
urlpatterns = [
    path("", views.home, name="home"),
    path("queue/", views.queue, name="queue"),
    path("graphs/<str:graph_name>/start/", views.start_run, name="start_run"),
    path("tasks/<int:pk>/", views.task_detail, name="task"),
    path("tasks/<int:pk>/decide/", views.decide, name="decide"),
    path("tasks/<int:pk>/quick/", views.quick_decide, name="quick_decide"),
    path("threads/<path:thread_id>/state/", views.thread_state, name="thread_state"),
    path("threads/<path:thread_id>/replay/", views.replay, name="replay"),
    path("threads/<path:thread_id>/", views.thread_detail, name="thread"),
]
