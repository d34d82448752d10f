from django.apps import AppConfig


class AgentServerConfig(AppConfig):
    name = "agent_server"
    verbose_name = "LangGraph Agent Server API"

    def ready(self) -> None:
        from agent_server import streaming  # noqa: F401  (its side duty: trimming kept streams)
