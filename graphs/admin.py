from django.contrib import admin

from graphs.models import Run, Thread


@admin.register(Thread)
class ThreadAdmin(admin.ModelAdmin):
    list_display = ("thread_id", "graph_name", "title", "created_at")
    list_filter = ("graph_name",)
    search_fields = ("thread_id", "title")
    readonly_fields = ("thread_id", "created_at")


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("pk", "graph_name", "thread", "kind", "status", "attempts", "created_at")
    list_filter = ("status", "kind", "graph_name")
    search_fields = ("thread__thread_id",)
    # The worker owns a run's lifecycle; admin shows it.
    readonly_fields = [f.name for f in Run._meta.fields]
