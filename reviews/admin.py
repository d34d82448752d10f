from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.http import HttpRequest

from graphs.admin import RunAdmin, ThreadAdmin
from graphs.models import Run, Thread
from reviews.access import REVIEW, can_thread, visible_tasks, visible_threads
from reviews.actions import ActionRefused
from reviews.actions import threads as thread_actions
from reviews.audited import (
    changed,
    group_summary,
    rule_summary,
    token_summary,
    user_summary,
    webhook_summary,
)
from reviews.models import (
    ApiToken,
    AuditEvent,
    ReviewRule,
    ReviewTask,
    WebhookDelivery,
    WebhookEndpoint,
)


@admin.register(ReviewTask)
class ReviewTaskAdmin(admin.ModelAdmin):
    list_display = ("pk", "graph_name", "thread", "kind", "tool_name", "status", "decided_by")
    list_filter = ("status", "kind", "graph_name")
    search_fields = ("thread__thread_id", "tool_name")
    # Decisions go through the task page, which checks and audits them.
    readonly_fields = [f.name for f in ReviewTask._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReviewTask]:
        # Staff see the tasks their review rules show them, as on the pages.
        return visible_tasks(request.user, super().get_queryset(request))

    def has_delete_permission(self, request: HttpRequest, obj: ReviewTask | None = None) -> bool:
        # A task is the record of a review, its approvals with it: it goes
        # only with its thread (the pages' delete, audited).
        return False


MAY_NOT_CHANGE = "it has open tasks you may not decide; deleting it would overrule them."


# Threads and runs, as graphs.admin shows them, under the same rules as the
# pages: staff see (and may delete) only threads they may see whole.
class GatedThreadAdmin(ThreadAdmin):
    # A thread's graph and metadata are its runs' to write; a deletion goes
    # through the pages' action, with its rights, checks and audit row.
    readonly_fields = [f.name for f in Thread._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Thread]:
        return visible_threads(request.user, super().get_queryset(request), graph_rules=True)

    def has_delete_permission(self, request: HttpRequest, obj: Thread | None = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or can_thread(request.user, REVIEW, obj))

    def get_deleted_objects(self, objs, request: HttpRequest):
        # A thread's tasks go with it, through the pages' action and its
        # rights (no one deletes a task on its own in admin).
        deleted, counts, _, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected

    def delete_model(self, request: HttpRequest, obj: Thread) -> None:
        self.delete_queryset(request, Thread.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Thread]) -> None:
        for thread in queryset:
            if not can_thread(request.user, REVIEW, thread):
                self.message_user(request, f"{thread}: {MAY_NOT_CHANGE}", messages.ERROR)
                continue
            try:
                thread_actions.delete(
                    thread, user=request.user, client_address=request.META.get("REMOTE_ADDR")
                )
            except ActionRefused as exc:
                self.message_user(request, f"{thread}: {exc}", messages.ERROR)


class GatedRunAdmin(RunAdmin):
    def get_queryset(self, request: HttpRequest) -> QuerySet[Run]:
        threads = visible_threads(request.user, Thread.objects.all(), graph_rules=True)
        return super().get_queryset(request).filter(thread__in=threads)


admin.site.unregister(Thread)
admin.site.register(Thread, GatedThreadAdmin)
admin.site.unregister(Run)
admin.site.register(Run, GatedRunAdmin)


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


class AuditedAdmin(admin.ModelAdmin):
    """Each change made here (groups and other relations included), and each
    deletion (one or several at once), is audited as `audit_action`, with the
    object as `summary` tells it."""

    audit_action = ""

    # The object as the trail tells it (reviews.audited).
    summary: Callable[[Any], dict]

    def _audit(self, request, obj, before: dict | None, after: dict | None) -> None:
        changed(
            self.audit_action,
            before,
            after,
            actor=request.user,
            graph_name=getattr(obj, "graph_name", ""),
            client_address=request.META.get("REMOTE_ADDR"),
        )

    def get_form(self, request, obj=None, **kwargs):
        if obj is not None:  # as it was, before the form changes it
            obj._audit_before = self.summary(obj)
        return super().get_form(request, obj, **kwargs)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        before = getattr(form.instance, "_audit_before", None) if change else None
        self._audit(request, form.instance, before, self.summary(form.instance))

    def delete_model(self, request, obj) -> None:
        before = self.summary(obj)
        super().delete_model(request, obj)
        self._audit(request, obj, before, None)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    """Django's user admin; who may approve what is whose groups, flags and
    permissions say, so each change to them is in the trail."""

    audit_action = "user.changed"

    summary = staticmethod(user_summary)

    def user_change_password(self, request, id, form_url=""):
        # Setting someone's password lets its setter act as them: in the
        # trail, like a change of who may act.
        user = self.get_object(request, unquote(id))
        before = user_summary(user) if user is not None else None
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302 and user is not None:
            self._audit(request, user, before, {**user_summary(user), "password": "set"})
        return response


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    audit_action = "group.changed"

    summary = staticmethod(group_summary)


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedAdmin):
    audit_action = "token.changed"
    list_display = (
        "name",
        "prefix",
        "user",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    # Keys are issued with `manage.py create_api_token`; here they are
    # revoked, or given an earlier (or later) end.
    fields = ("name", "user", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at")
    readonly_fields = ("name", "user", "prefix", "created_at", "last_used_at")

    def has_add_permission(self, request) -> bool:
        return False

    summary = staticmethod(token_summary)


@admin.register(ReviewRule)
class ReviewRuleAdmin(AuditedAdmin):
    list_display = ("name", "order", "graph_name", "tool_name")
    filter_horizontal = ("view_groups", "review_groups", "admin_groups")
    # Who may see, decide and administer what: audited with its groups.
    audit_action = "rule.changed"

    summary = staticmethod(rule_summary)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AuditedAdmin):
    list_display = ("name", "url", "active")
    # Where task events go: a changed address sends them elsewhere.
    audit_action = "webhook.changed"

    summary = staticmethod(webhook_summary)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "endpoint",
        "event",
        "status",
        "attempts",
        "response_code",
        "next_attempt_at",
    )
    list_filter = ("status", "event", "endpoint")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        # A delivery carries its task, arguments and all: staff see those of
        # the tasks their review rules show them, as on the pages.
        deliveries = super().get_queryset(request)
        if request.user.is_superuser:
            return deliveries
        shown = visible_tasks(request.user, ReviewTask.objects.all()).values("pk")
        task_id = Cast(KT("payload__id"), models.BigIntegerField())
        return deliveries.alias(task_id=task_id).filter(task_id__in=shown)

    def has_add_permission(self, request) -> bool:
        return False
