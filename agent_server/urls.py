"""LangGraph's Agent Server API, mounted at /langgraph/ by hitl_site/urls.py.

Paths carry no trailing slash, as langgraph-sdk sends them.
"""

from django.urls import include, path

urlpatterns = [
    path("", include("agent_server.run_urls")),
]
