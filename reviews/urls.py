from django.urls import path

from reviews import views

urlpatterns = [
    path("", views.home, name="home"),
    path("queue/", views.queue, name="queue"),
    path("tasks/<int:pk>/", views.task_detail, name="task"),
    path("tasks/<int:pk>/decide/", views.decide, name="decide"),
    path("tasks/<int:pk>/quick/", views.quick_decide, name="quick_decide"),
    path("threads/<str:thread_id>/state/", views.thread_state, name="thread_state"),
]
