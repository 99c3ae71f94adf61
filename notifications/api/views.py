"""The API's endpoints. Thin: they check types (serializers), resolve users, and call
``notifications.services`` (writes) and ``notifications.selectors`` (reads)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from notifications import selectors, services, telegram_bot
from notifications.api import serializers as s
from notifications.api.errors import Conflict, from_django
from notifications.api.idempotency import HEADER, idempotent
from notifications.models import Notification, UserContact
from notifications.senders.base import DeliveryError

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
    OpenApiParameter.HEADER,
    description="Any unique string (a UUID): a retry with the same key and body gets the first "
    "response and creates nothing new; the same key with another body gets 409. Kept 24 h.",
)


def _get_notification(pk: int) -> Notification:
    notification = selectors.notification_get(pk) if pk <= s.MAX_ID else None
    if notification is None:
        raise exceptions.NotFound(f"No notification {pk}.")
    return notification


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


def _build(item: dict[str, Any], user: Any) -> Notification:
    return services.notification_build(
        user=user,
        message=item["message"],
        subject=item.get("subject") or "",
        channels=item.get("channels") or None,
        send_at=item.get("send_at"),
        expires_at=item.get("expires_at"),
    )


class NotificationPagination(CursorPagination):
    """Newest first, by a cursor on (created_at, id): each page is one index range scan,
    however deep (no OFFSET over the rows before it, no COUNT)."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    invalid_cursor_message = "Invalid cursor: use the next and previous links as given."

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
            raise exceptions.ValidationError({"cursor": [self.invalid_cursor_message]})
        return cursor


def _parses_as_time(text: str) -> bool:
    try:
        return parse_datetime(text) is not None
    except ValueError:
        return False


class NotificationsView(APIView):
    """List notifications, or create one."""

    read_perms = ("notifications.view_notification",)
    write_perms = ("notifications.add_notification",)

    @extend_schema(
        operation_id="notifications_list",
        parameters=[s.NotificationFilterSerializer],
        responses={200: s.NotificationPageSerializer},
        description="Newest first, filtered by user, status, delivering channel and creation "
        "time; `next` and `previous` are cursors that stay fast at any depth.",
    )
    def get(self, request: Request) -> Response:
        filters = s.NotificationFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        given = filters.validated_data
        queryset = selectors.notification_list(
            user=given.get("user"),
            statuses=sorted(given.get("status") or []),
            channel=given.get("channel"),
            created_after=given.get("created_after"),
            created_before=given.get("created_before"),
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
        "its status.",
    )
    def post(self, request: Request) -> Response:
        return idempotent(request, lambda: self._create(request))

    def _create(self, request: Request) -> Response:
        given = s.NotificationCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        item = given.validated_data
        users, missing = _resolve_users([item["user"]])
        if missing:
            raise exceptions.ValidationError({"user": [missing[0]]})
        try:
            notification = services.notification_create(
                user=users[item["user"]],
                message=item["message"],
                subject=item.get("subject") or "",
                channels=item.get("channels") or None,
                send_at=item.get("send_at"),
                expires_at=item.get("expires_at"),
            )
        except DjangoValidationError as err:
            raise from_django(err) from None
        location = reverse("api:notification", args=[notification.pk], request=request)
        return Response(
            s.NotificationSerializer(notification).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": location},
        )


class NotificationBatchView(APIView):
    """Create up to 1,000 notifications at once, all or nothing."""

    read_perms = ("notifications.view_notification",)
    write_perms = ("notifications.add_notification",)

    @extend_schema(
        operation_id="notifications_batch",
        request=s.NotificationBatchSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={202: s.BatchResultSerializer},
        description=f"1 to {s.BATCH_MAX} notifications, each as for `POST "
        "/api/v1/notifications`. All are created, or none (400 with each bad item's errors "
        "under `notifications.<index>.<field>`). The same handful of queries whatever the "
        "batch's size.",
    )
    def post(self, request: Request) -> Response:
        return idempotent(request, lambda: self._create(request))

    def _create(self, request: Request) -> Response:
        given = s.NotificationBatchSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        items = given.validated_data["notifications"]
        users, missing = _resolve_users([item["user"] for item in items])
        errors: dict[str, Any] = {
            str(index): {"user": [message]} for index, message in missing.items()
        }
        built = []
        for index, item in enumerate(items):
            if index in missing:
                continue
            try:
                built.append(_build(item, users[item["user"]]))
            except DjangoValidationError as err:
                errors[str(index)] = from_django(err).detail
        if errors:
            raise exceptions.ValidationError({"notifications": errors})
        created = services.notifications_save_new(built)
        return Response(
            {"notifications": s.BatchItemSerializer(created, many=True).data},
            status=status.HTTP_202_ACCEPTED,
        )


class NotificationView(APIView):
    """One notification with every delivery attempt."""

    read_perms = ("notifications.view_notification",)
    write_perms = ("notifications.change_notification",)

    @extend_schema(operation_id="notifications_retrieve", responses=s.NotificationDetailSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.NotificationDetailSerializer(_get_notification(pk)).data)


class NotificationActionView(APIView):
    """Cancel or resend one notification, with the admin actions' rules and messages."""

    read_perms = ("notifications.view_notification",)
    write_perms = ("notifications.change_notification",)
    verb = ""

    def act(self, queryset: QuerySet[Notification]) -> services.BulkResult:
        raise NotImplementedError

    def post(self, request: Request, pk: int) -> Response:
        return idempotent(request, lambda: self._act(pk))

    def _act(self, pk: int) -> Response:
        if pk > s.MAX_ID:
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
                'skipped: 1 already sent"): only pending, scheduled and queued ones can be '
                "cancelled.",
            ),
        },
        description="Cancel a notification that is still waiting (pending, scheduled or "
        "queued); one being sent or done can't be.",
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


class ContactView(APIView):
    """A user's contact: how to reach them on each channel, and their opt-outs."""

    read_perms = ("notifications.view_usercontact",)
    write_perms = ("notifications.change_usercontact",)

    def _contact(self, pk: int) -> UserContact:
        contact = selectors.contact_of(pk) if pk <= s.MAX_ID else None
        if contact is None:
            raise exceptions.NotFound(f"No user {pk}.")
        return contact

    @staticmethod
    def _shown(contact: UserContact) -> Response:
        """The contact, with its invite link when Telegram is configured."""
        invite = None
        if contact.pk is not None and settings.TELEGRAM_BOT_TOKEN:
            try:
                invite = telegram_bot.page_link(contact)
            except DeliveryError:
                invite = None  # the bot's username is not known: no link to give
        return Response(s.ContactSerializer(contact, context={"invite": invite}).data)

    @extend_schema(operation_id="users_contact_retrieve", responses=s.ContactSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return self._shown(self._contact(pk))

    @extend_schema(
        operation_id="users_contact_update",
        request=s.ContactSerializer,
        responses=s.ContactSerializer,
        description="Set the fields given (the others keep their values), checked as in the "
        "admin: the phone must be a mobile number and is stored as +79161234567.",
    )
    def put(self, request: Request, pk: int) -> Response:
        given = s.ContactSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        contact = services.user_contact_update(
            contact=self._contact(pk), changes=dict(given.validated_data)
        )
        return self._shown(contact)
