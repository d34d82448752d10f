from django.contrib import admin

from graphs.models import Thread


@admin.register(Thread)
class ThreadAdmin(admin.ModelAdmin):
    list_display = ("thread_id", "graph_name", "title", "created_at")
    list_filter = ("graph_name",)
    search_fields = ("thread_id", "title")
    readonly_fields = ("thread_id", "created_at")
