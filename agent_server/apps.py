from django.apps import AppConfig


class AgentServerConfig(AppConfig):
    name = "agent_server"
    verbose_name = "LangGraph Agent Server API"
