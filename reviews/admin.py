from django.contrib import admin

from reviews.models import ApiToken, AuditEvent, ReviewTask


@admin.register(ReviewTask)
class ReviewTaskAdmin(admin.ModelAdmin):
    list_display = ("pk", "graph_name", "thread", "kind", "tool_name", "status", "decided_by")
    list_filter = ("status", "kind", "graph_name")
    search_fields = ("thread__thread_id", "tool_name")
    # Decisions go through the task page, which checks and audits them.
    readonly_fields = [f.name for f in ReviewTask._meta.fields]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_name", "action", "graph_name", "thread_id", "task_id")
    list_filter = ("action", "graph_name")
    search_fields = ("thread_id", "actor_name")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the trail is only ever added to

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "user", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    # Keys are issued with `manage.py create_api_token`; here they are revoked.
    fields = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("name", "user", "prefix", "created_at", "last_used_at")

    def has_add_permission(self, request) -> bool:
        return False
