from django.urls import path

from reviews.consumers import ReviewerConsumer

websocket_urlpatterns = [
    path("ws/reviews/", ReviewerConsumer.as_asgi()),
]
