"""The API's endpoints. Thin: they check what the schema states (serializers: 400), then the
rules it can't (users, times, the services' checks: 422), and call ``notifications.services``
(writes) and ``notifications.selectors`` (reads)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from notifications import selectors, services, telegram_bot
from notifications.api import serializers as s
from notifications.api.errors import Conflict, Unprocessable, from_django
from notifications.api.fields import MAX_ID, user_filter, utc_clamped
from notifications.api.idempotency import HEADER, idempotent
from notifications.api.throttling import CountsFailedAuthentication
from notifications.composing import send_time
from notifications.models import Notification, UserContact
from notifications.preferences.defaults import default_category
from notifications.preferences.models import Category
from notifications.senders.base import DeliveryError

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
    OpenApiParameter.HEADER,
    description="Any unique string (a UUID): a retry with the same key and body gets the first "
    "response and creates nothing new; the same key with another body gets 409. Kept 24 h.",
)


FURTHEST = timedelta(days=366 * s.FURTHEST_YEARS)


class ApiView(CountsFailedAuthentication, APIView):
    """Every endpoint: a request without valid credentials costs its address one anonymous
    request (see ``notifications.api.throttling``)."""


def _get_notification(pk: int) -> Notification:
    notification = selectors.notification_get(pk) if pk <= MAX_ID else None
    if notification is None:
        raise exceptions.NotFound(f"No notification {pk}.")
    return notification


def _get_contact(pk: int) -> UserContact:
    """The user's contact (unsaved and blank if they have none yet); 404 for no such user."""
    contact = selectors.contact_of(pk) if pk <= MAX_ID else None
    if contact is None:
        raise exceptions.NotFound(f"No user {pk}.")
    return contact


def _resolve_users(references: list[int | str]) -> tuple[dict[int | str, Any], dict[int, str]]:
    """The users named in ``references`` (one query), and the message for each index whose
    user doesn't exist."""
    ids = {r for r in references if isinstance(r, int)}
    names = {r for r in references if isinstance(r, str)}
    found = selectors.users_by_reference(ids, names)
    missing = {
        index: f"No user with id {ref}." if isinstance(ref, int) else f"No user named {ref!r}."
        for index, ref in enumerate(references)
        if ref not in found
    }
    return found, missing


def _far_times(item: dict[str, Any]) -> dict[str, list[str]]:
    """The item's times more than ``FURTHEST_YEARS`` from now (a rule: 422)."""
    now = timezone.now()
    return {
        name: [f"This time is more than {s.FURTHEST_YEARS} years away."]
        for name in ("send_at", "expires_at")
        if item.get(name) is not None and abs(item[name] - now) > FURTHEST
    }


def _build(item: dict[str, Any], user: Any, batch: BatchContext) -> Notification:
    category = batch.category(item)
    return services.notification_build(
        user=user,
        message=item["message"],
        subject=item.get("subject") or "",
        channels=item.get("channels") or None,
        send_at=send_time(
            item.get("send_at"), item.get("send_at_local") or "", batch.contacts.get(user.pk)
        ),
        expires_at=item.get("expires_at"),
        category=category,
        digest_key=item.get("digest_key") or "",
    )


class BatchContext:
    """What a batch's items name, read once for all of them: their categories (one query)
    and, for local times, their users' contacts (one query)."""

    def __init__(self, items: list[dict[str, Any]], users: dict[Any, Any]) -> None:
        keys = {item["category"] for item in items if item.get("category")}
        self.categories = {c.key: c for c in Category.objects.filter(key__in=keys)} if keys else {}
        self._default: Category | None = None
        local = {
            users[item["user"]].pk
            for item in items
            if item.get("send_at_local") and item["user"] in users
        }
        self.contacts = (
            {c.user_id: c for c in UserContact.objects.filter(user_id__in=local)} if local else {}
        )

    def category(self, item: dict[str, Any]) -> Category | None:
        """The item's category; the default one when it names none and has a digest key.
        Raises ``ValidationError`` for a key no category has."""
        key = item.get("category")
        if key:
            if key not in self.categories:
                raise DjangoValidationError(
                    {"category": f"There is no category with the key {key!r}."}
                )
            return self.categories[key]
        if item.get("digest_key"):
            if self._default is None:
                self._default = default_category()
            return self._default
        return None


class NotificationPagination(CursorPagination):
    """Newest first, by a cursor on (created_at, id): each page is one index range scan,
    however deep (no OFFSET over the rows before it, no COUNT). A ``limit`` out of range is
    refused (400), not quietly replaced; a cursor the API did not give is refused with 422."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    invalid_cursor_message = "Invalid cursor: use the next and previous links as given."

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not re.fullmatch(r"[0-9]{1,6}", raw) or not 1 <= int(raw) <= self.max_page_size:
            raise exceptions.ValidationError(
                {"limit": [f"Give a whole number from 1 to {self.max_page_size}."]}
            )
        return int(raw)

    def decode_cursor(self, request: Request):
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            cursor = False
        if cursor is False or (
            cursor is not None
            and cursor.position is not None
            and not _parses_as_time(cursor.position)
        ):
            raise Unprocessable({"cursor": [self.invalid_cursor_message]})
        return cursor


def _parses_as_time(text: str) -> bool:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return False
    return timezone.is_aware(moment) and utc_clamped(moment) == moment


LIST_PARAMETERS = [
    s.NotificationFilterSerializer,
    OpenApiParameter(
        "status",
        s.STATUS_LIST,
        OpenApiParameter.QUERY,
        style="form",
        explode=False,
        description="One status, or several separated by commas (e.g. `failed,expired`).",
    ),
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": NotificationPagination.max_page_size},
        OpenApiParameter.QUERY,
        description=f"Notifications per page: 1 to {NotificationPagination.max_page_size}; "
        f"default {NotificationPagination.page_size}.",
    ),
    OpenApiParameter(
        "cursor",
        {"type": "string"},
        OpenApiParameter.QUERY,
        description="Where the page starts: take it from the `next` or `previous` link as "
        "given (one the API did not give gets 422).",
    ),
]


class NotificationsView(ApiView):
    """List notifications, or create one."""

    read_perms = ("notifications.view_notification",)
    write_perms = ("notifications.add_notification",)

    @extend_schema(
        operation_id="notifications_list",
        parameters=LIST_PARAMETERS,
        responses={200: s.NotificationPageSerializer},
        description="Newest first, filtered by user, status, delivering channel and creation "
        "time; `next` and `previous` are cursors that stay fast at any depth.",
    )
    def get(self, request: Request) -> Response:
        filters = s.NotificationFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        given = filters.validated_data
        after, before = given.get("created_after"), given.get("created_before")
        queryset = selectors.notification_list(
            user=user_filter(given["user"]) if "user" in given else None,
            statuses=given.get("status") or [],
            channel=given.get("channel"),
            created_after=utc_clamped(after) if after else None,
            created_before=utc_clamped(before) if before else None,
        )
        paginator = NotificationPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(s.NotificationSerializer(page, many=True).data)

    @extend_schema(
        operation_id="notifications_create",
        request=s.NotificationCreateSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={202: s.NotificationSerializer},
        description="Create a notification: `queued` (sent as soon as a worker takes it) or, "
        "with a future `send_at`, `scheduled`. Poll `GET /api/v1/notifications/{id}` for "
        "its status. 400: the body breaks its schema; 422: it breaks a rule the schema can't "
        "state (no such user, an expiry not after the send time, a time over 100 years "
        "away).",
    )
    def post(self, request: Request) -> Response:
        return idempotent(request, lambda: self._create(request))

    def _create(self, request: Request) -> Response:
        given = s.NotificationCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        item = given.validated_data
        users, missing = _resolve_users([item["user"]])
        errors = _far_times(item)
        if missing:
            errors["user"] = [missing[0]]
        if errors:
            raise Unprocessable(errors)
        try:
            notification = services.notification_create(
                user=users[item["user"]],
                message=item["message"],
                subject=item.get("subject") or "",
                channels=item.get("channels") or None,
                send_at=item.get("send_at"),
                expires_at=item.get("expires_at"),
                source="api",
                category=item.get("category") or None,
                digest_key=item.get("digest_key") or "",
                local_send_at=item.get("send_at_local") or "",
            )
        except DjangoValidationError as err:
            raise from_django(err) from None
        location = reverse("api:notification", args=[notification.pk], request=request)
        return Response(
            s.NotificationSerializer(notification).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": location},
        )


class NotificationBatchView(ApiView):
    """Create up to 1,000 notifications at once, all or nothing."""

    read_perms = ("notifications.view_notification",)
    write_perms = ("notifications.add_notification",)

    @extend_schema(
        operation_id="notifications_batch",
        request=s.NotificationBatchSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={202: s.BatchResultSerializer},
        description=f"1 to {s.BATCH_MAX} notifications, each as for `POST "
        "/api/v1/notifications`. All are created, or none (400 or 422 with each bad item's "
        "errors under `notifications.<index>.<field>`). The same handful of queries whatever "
        "the batch's size.",
    )
    def post(self, request: Request) -> Response:
        return idempotent(request, lambda: self._create(request))

    def _create(self, request: Request) -> Response:
        given = s.NotificationBatchSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        items = given.validated_data["notifications"]
        users, missing = _resolve_users([item["user"] for item in items])
        errors: dict[str, Any] = {}
        built = []
        batch = BatchContext(items, users)
        for index, item in enumerate(items):
            problems: dict[str, Any] = _far_times(item)
            if index in missing:
                problems["user"] = [missing[index]]
            if not problems:
                try:
                    built.append(_build(item, users[item["user"]], batch))
                except DjangoValidationError as err:
                    problems = from_django(err).detail
            if problems:
                errors[str(index)] = problems
        if errors:
            raise Unprocessable({"notifications": errors})
        created = services.notifications_save_new(built, source="api")
        return Response(
            {"notifications": s.BatchItemSerializer(created, many=True).data},
            status=status.HTTP_202_ACCEPTED,
        )


class NotificationView(ApiView):
    """One notification with every delivery attempt."""

    read_perms = ("notifications.view_notification",)
    write_perms = ("notifications.change_notification",)

    @extend_schema(operation_id="notifications_retrieve", responses=s.NotificationDetailSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.NotificationDetailSerializer(_get_notification(pk)).data)


class NotificationActionView(ApiView):
    """Cancel or resend one notification, with the admin actions' rules and messages."""

    read_perms = ("notifications.view_notification",)
    write_perms = ("notifications.change_notification",)
    verb = ""

    def act(self, queryset: QuerySet[Notification]) -> services.BulkResult:
        raise NotImplementedError

    def post(self, request: Request, pk: int) -> Response:
        return idempotent(request, lambda: self._act(pk))

    def _act(self, pk: int) -> Response:
        if pk > MAX_ID:
            raise exceptions.NotFound(f"No notification {pk}.")
        result = self.act(Notification.objects.filter(pk=pk))
        if not result.changed and not result.left_alone:
            raise exceptions.NotFound(f"No notification {pk}.")
        if not result.changed:
            raise Conflict(result.describe(self.verb), code="left_alone")
        notification = _get_notification(pk)
        return Response(
            {
                "detail": result.describe(self.verb),
                "notification": s.NotificationSerializer(notification).data,
            }
        )


class NotificationCancelView(NotificationActionView):
    verb = "cancelled"

    @extend_schema(
        operation_id="notifications_cancel",
        request=None,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            200: s.ActionResultSerializer,
            409: OpenApiResponse(
                s.ErrorSerializer,
                description="Left alone, with the admin's message (e.g. \"0 cancelled, 1 "
                "skipped: 1 already sent\"): one that is done can't be cancelled.",
            ),
        },
        description="Cancel a notification not sent yet: pending, scheduled, queued, or being "
        "sent. One being sent stops before its next provider call, within about a second; a "
        "call already in flight finishes, and if the provider took the message the "
        "notification ends `sent`. One that is done can't be cancelled.",
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, queryset: QuerySet[Notification]) -> services.BulkResult:
        return services.notifications_cancel(queryset=queryset)


class NotificationResendView(NotificationActionView):
    verb = "queued again"

    @extend_schema(
        operation_id="notifications_resend",
        request=None,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            200: s.ActionResultSerializer,
            409: OpenApiResponse(
                s.ErrorSerializer,
                description="Left alone, with the admin's message (e.g. \"0 queued again, 1 "
                'skipped: 1 being sent").',
            ),
        },
        description="Queue a notification again from the start of its chain, even if it was "
        "sent (as the admin's Resend action); one still waiting or being sent is left alone.",
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)

    def act(self, queryset: QuerySet[Notification]) -> services.BulkResult:
        return services.notifications_resend(queryset=queryset)


class ContactView(ApiView):
    """A user's contact: how to reach them on each channel, and their opt-outs. Reading it
    writes nothing and shows no invite link (``ContactInviteView`` makes one)."""

    read_perms = ("notifications.view_usercontact",)
    write_perms = ("notifications.change_usercontact",)

    @extend_schema(operation_id="users_contact_retrieve", responses=s.ContactSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.ContactSerializer(_get_contact(pk)).data)

    @extend_schema(
        operation_id="users_contact_update",
        request=s.ContactSerializer,
        responses=s.ContactSerializer,
        description="Set the fields given; the others keep their values, also when the bot "
        "changes them meanwhile (a /stop). Checked as in the admin: 400 when the body breaks "
        "its schema (an unknown or read-only field included), 422 when the phone is not a "
        "mobile number; it is stored as +79161234567. A new `telegram_chat_id` clears "
        "`telegram_blocked`.",
    )
    def put(self, request: Request, pk: int) -> Response:
        given = s.ContactSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            services.user_contact_update(
                contact=_get_contact(pk), changes=dict(given.validated_data)
            )
        except DjangoValidationError as err:
            raise from_django(err) from None
        return Response(s.ContactSerializer(_get_contact(pk)).data)


class ContactInviteView(ApiView):
    """A live Telegram invite link for one user, for a client that may change the contact."""

    read_perms = ("notifications.view_usercontact",)
    write_perms = ("notifications.change_usercontact",)

    @extend_schema(
        operation_id="users_contact_invite",
        request=None,
        responses={
            200: s.InviteSerializer,
            409: OpenApiResponse(
                s.ErrorSerializer,
                description="Telegram is not configured (TELEGRAM_BOT_TOKEN), or the bot's "
                "username is not known (set TELEGRAM_BOT_USERNAME, or let getMe answer).",
            ),
        },
        description="A link the user opens in Telegram to link their chat to this contact (the "
        "bot's /start with a single-use token). The same link comes back while it is unused "
        "and has more than half its lifetime (NOTIFY_TELEGRAM_INVITE_TTL) left. Whoever holds "
        "it can link their own chat, so it needs a read-and-write key (or the staff "
        "permission to change contacts); show it to that user only.",
    )
    def post(self, request: Request, pk: int) -> Response:
        contact = _get_contact(pk)
        if not settings.TELEGRAM_BOT_TOKEN:
            raise Conflict(
                "Telegram is not configured (TELEGRAM_BOT_TOKEN is blank): there is no bot to "
                "link a chat to.",
                code="telegram_not_configured",
            )
        if contact.pk is None:  # a user created before contacts existed
            contact = services.user_contact_update(contact=contact, changes={})
        try:
            invite = telegram_bot.page_link(contact)
        except DeliveryError as err:
            raise Conflict(
                f"No invite link: {err.message}. Set TELEGRAM_BOT_USERNAME, or try again once "
                "Telegram answers getMe.",
                code="telegram_unavailable",
            ) from None
        return Response(s.InviteSerializer(invite).data)
