"""The webhooks API, ``/api/v1/webhooks``: client services register their endpoints, rotate
their secrets, read their recent deliveries and replay one.

An endpoint's secret is answered whole once: by the create (``secret``, made when none is
given) and by a rotation (the new one). Every other answer shows the signing secrets masked
(``secrets``: ``whsec_…AbCd``, the current one first).

What the schema states is checked first (400: a URL that is not https outside DEBUG, a secret
not in ``whsec_`` form, an unknown event type); then the rules it can't (422: a URL that is
not one, or whose host is on a private network or does not resolve).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from notifications.api.errors import Conflict, from_django
from notifications.api.fields import (
    MAX_ID,
    ONE_LINE,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    pattern,
)
from notifications.api.serializers import ErrorSerializer, StrictSerializer
from notifications.api.views import ApiView
from notifications.models import ApiKey
from notifications.webhooks import services
from notifications.webhooks.models import EventType, WebhookDelivery, WebhookEndpoint
from notifications.webhooks.signing import SECRET_PATTERN, SECRET_RULE

# A URL as Django's URLValidator reads one, spelled for both regex dialects: optional user
# info, a host name with a top-level domain (or localhost, an IPv4 or a bracketed IPv6
# address), an optional port and path. Whether it is really one (an octet over 255, a port
# out of range), and where its host is, are rules beyond the schema (422).
_USER = r"(?:[^\x00-\x20\x7f:@/]+(?::[^\x00-\x20\x7f:@/]*)?@)?"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = (
    rf"(?:(?:{_LABEL}\.)+(?:[A-Za-z]{{2,63}}|xn--[A-Za-z0-9]{{1,59}})"
    r"|localhost|[0-9]{1,3}(?:\.[0-9]{1,3}){3}|\[[0-9A-Fa-f:.]{2,45}\])"
)
_REST = r"(?::[0-9]{1,5})?(?:[/?#][^\x00-\x20\x7f]*)?\Z"
HTTPS_URL = rf"^https://{_USER}{_HOST}{_REST}"
ANY_URL = rf"^https?://{_USER}{_HOST}{_REST}"
DELIVERIES_MAX = 100
DELIVERIES_DEFAULT = 20
ENDPOINT_PERMS = "webhooks.%s_webhookendpoint"


class EndpointUrlField(StrictCharField):
    """An https:// URL (http:// too with DEBUG), read when the schema or a request is made."""

    def get_validators(self) -> list:
        return [
            *super().get_validators(),
            pattern(
                ANY_URL if settings.DEBUG else HTTPS_URL,
                "Use an https:// URL (https://host.example/path): webhooks carry your "
                "notifications' state.",
            ),
        ]


def _event_types(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=StrictChoiceField(choices=EventType.choices),
        min_length=1,
        max_length=len(EventType.values),
        **kwargs,
    )


def _url(**kwargs: Any) -> EndpointUrlField:
    return EndpointUrlField(
        max_length=WebhookEndpoint._meta.get_field("url").max_length,
        help_text="Where events are POSTed: https:// (http:// only while the service runs with "
        "DEBUG); its host must resolve to a public address (else 422).",
        **kwargs,
    )


def _description(**kwargs: Any) -> StrictCharField:
    return StrictCharField(
        allow_blank=True,
        max_length=WebhookEndpoint._meta.get_field("description").max_length,
        validators=[pattern(ONE_LINE, "The description must be one line.")],
        help_text="What the endpoint is, for people.",
        **kwargs,
    )


def _secret(**kwargs: Any) -> StrictCharField:
    return StrictCharField(validators=[pattern(SECRET_PATTERN, str(SECRET_RULE))], **kwargs)


class EndpointSerializer(serializers.Serializer):
    """An endpoint as it is; its secrets masked."""

    id = serializers.IntegerField(read_only=True)
    url = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices))
    enabled = serializers.BooleanField(read_only=True)
    disabled_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When it was disabled; null while enabled."
    )
    disabled_reason = serializers.CharField(
        read_only=True,
        help_text="Why it was disabled (every try of a delivery failed, or by whom); blank "
        "while enabled.",
    )
    secrets = serializers.ListField(
        child=serializers.CharField(),
        source="masked_secrets",
        help_text="The secrets signing now, masked (whsec_…AbCd): the current one, and after a "
        "rotation the previous one until `previous_secret_until`.",
    )
    previous_secret_until = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="The previous secret signs too until then; null: no previous secret.",
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class EndpointWithSecretSerializer(EndpointSerializer):
    """An endpoint and its new secret, whole: the only answer that holds it."""

    secret = serializers.CharField(
        read_only=True,
        help_text="The secret to verify signatures with (whsec_…): shown only now; store it.",
    )


class EndpointCreateSerializer(StrictSerializer):
    """An endpoint to create (unknown fields are refused)."""

    url = _url()
    description = _description(required=False)
    event_types = _event_types(
        required=False, help_text="The events it gets; left out: every event type."
    )
    enabled = StrictBooleanField(required=False, default=True)
    secret = _secret(
        required=False,
        help_text="whsec_ and the base64 of 24 to 64 random bytes; left out: one is made "
        "(and answered once).",
    )


class EndpointUpdateSerializer(StrictSerializer):
    """What to change of an endpoint; fields left out keep their values."""

    url = _url(required=False)
    description = _description(required=False)
    event_types = _event_types(required=False, help_text="The events it gets (all of them).")
    enabled = StrictBooleanField(
        required=False,
        help_text="true resumes a disabled endpoint (its waiting deliveries go at once); false "
        "stops it (they wait).",
    )


class RotateSerializer(StrictSerializer):
    """A new secret for an endpoint."""

    secret = _secret(required=False, help_text="The new secret; left out: one is made.")
    keep_previous = StrictBooleanField(
        required=False,
        default=True,
        help_text="Whether the current secret keeps signing beside the new one for 24 hours "
        "(true, the default), while receivers switch; false: it stops now.",
    )


class EndpointListSerializer(serializers.Serializer):
    webhooks = EndpointSerializer(many=True)


class DeliverySerializer(serializers.Serializer):
    """One event to the endpoint: where it stands and what the endpoint last answered."""

    id = serializers.IntegerField()
    webhook_id = serializers.CharField(
        source="event.message_id", help_text="The `webhook-id` header: the same on every try."
    )
    event_type = serializers.ChoiceField(source="event.type", choices=EventType.choices)
    version = serializers.IntegerField(source="event_id", help_text="The event's version.")
    notification = serializers.IntegerField(source="event.notification_id", allow_null=True)
    campaign = serializers.IntegerField(source="event.campaign_id", allow_null=True)
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices)
    tries = serializers.IntegerField(source="attempts")
    next_attempt_at = serializers.DateTimeField(
        allow_null=True, help_text="When it is tried next; null once it ended."
    )
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(
        allow_null=True, help_text="The HTTP status of the last answer; null: none came."
    )
    last_response_ms = serializers.IntegerField(source="last_duration_ms", allow_null=True)
    last_response = serializers.CharField(help_text="The first 1 KB of the last answer's body.")
    last_error = serializers.CharField()
    replay_of = serializers.IntegerField(
        allow_null=True, help_text="The delivery this one sends again (a replay); null: none."
    )


class DeliveryListSerializer(serializers.Serializer):
    deliveries = DeliverySerializer(many=True)


def _endpoint(pk: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=pk).first() if pk <= MAX_ID else None
    if endpoint is None:
        raise exceptions.NotFound(f"No webhook endpoint {pk}.")
    return endpoint


def _who(request: Request) -> str:
    if isinstance(request.auth, ApiKey):
        return f"the API key {request.auth.name!r}"
    return str(request.user.get_username())


class WebhooksView(ApiView):
    """The endpoints; create one."""

    read_perms = (ENDPOINT_PERMS % "view",)
    write_perms = (ENDPOINT_PERMS % "add",)

    @extend_schema(
        operation_id="webhooks_list",
        responses=EndpointListSerializer,
        description="Every webhook endpoint, newest first, with its secrets masked.",
    )
    def get(self, request: Request) -> Response:
        endpoints = WebhookEndpoint.objects.order_by("-created_at", "-id")
        return Response({"webhooks": EndpointSerializer(endpoints, many=True).data})

    @extend_schema(
        operation_id="webhooks_create",
        request=EndpointCreateSerializer,
        responses={201: EndpointWithSecretSerializer},
        description="Register an endpoint: events of the types it names are POSTed to it, "
        "signed per the Standard Webhooks specification (headers `webhook-id`, "
        "`webhook-timestamp`, `webhook-signature`). The answer holds its `secret` whole, the "
        "only time it is shown. 400: the body breaks its schema (a URL that is not https, a "
        "secret not in whsec_ form); 422: the URL is not one, or its host is on a private "
        "network (loopback, RFC 1918, link-local, metadata) or does not resolve.",
    )
    def post(self, request: Request) -> Response:
        given = EndpointCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            endpoint, secret = services.webhook_endpoint_create(**given.validated_data)
        except DjangoValidationError as err:
            raise from_django(err) from None
        body = EndpointWithSecretSerializer(endpoint).data | {"secret": secret}
        location = reverse("api:webhook", args=[endpoint.pk], request=request)
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})


class WebhookView(ApiView):
    """One endpoint: read, change, delete."""

    read_perms = (ENDPOINT_PERMS % "view",)

    @property
    def write_perms(self) -> tuple[str, ...]:
        return (ENDPOINT_PERMS % ("delete" if self.request.method == "DELETE" else "change"),)

    @extend_schema(operation_id="webhooks_retrieve", responses=EndpointSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(EndpointSerializer(_endpoint(pk)).data)

    @extend_schema(
        operation_id="webhooks_update",
        request=EndpointUpdateSerializer,
        responses=EndpointSerializer,
        description="Change the fields given. `enabled: true` resumes an endpoint that was "
        "disabled (after every try of a delivery failed, or by hand), and its waiting "
        "deliveries go at once. 400 and 422 as for creating one.",
    )
    def patch(self, request: Request, pk: int) -> Response:
        given = EndpointUpdateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            endpoint = services.webhook_endpoint_update(
                endpoint=_endpoint(pk), changes=dict(given.validated_data), by=_who(request)
            )
        except DjangoValidationError as err:
            raise from_django(err) from None
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(
        operation_id="webhooks_delete",
        responses={204: None},
        description="Delete the endpoint and its deliveries; nothing more is sent to it.",
    )
    def delete(self, request: Request, pk: int) -> Response:
        services.webhook_endpoint_delete(endpoint=_endpoint(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateView(ApiView):
    """A new secret for one endpoint."""

    read_perms = (ENDPOINT_PERMS % "view",)
    write_perms = (ENDPOINT_PERMS % "change",)

    @extend_schema(
        operation_id="webhooks_rotate_secret",
        request=RotateSerializer,
        responses=EndpointWithSecretSerializer,
        description="Sign with a new secret from now (the one given, or a new one), answered "
        "whole once. With `keep_previous` (the default) the current secret keeps signing "
        "beside it for 24 hours: each webhook carries both signatures, so a receiver verifies "
        "with either while it switches.",
    )
    def post(self, request: Request, pk: int) -> Response:
        given = RotateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        endpoint = _endpoint(pk)
        keep = given.validated_data["keep_previous"]
        secret = services.webhook_endpoint_rotate_secret(
            endpoint=endpoint,
            secret=given.validated_data.get("secret", ""),
            overlap=services.ROTATION_OVERLAP if keep else timedelta(0),
        )
        return Response(EndpointWithSecretSerializer(endpoint).data | {"secret": secret})


STATUS_PARAMETER = OpenApiParameter(
    "status",
    {"$ref": "#/components/schemas/WebhookDeliveryStatus"},
    OpenApiParameter.QUERY,
    description="Only deliveries in this state.",
)
LIMIT_PARAMETER = OpenApiParameter(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": DELIVERIES_MAX},
    OpenApiParameter.QUERY,
    description=f"How many, newest first: 1 to {DELIVERIES_MAX}; default {DELIVERIES_DEFAULT}.",
)


class WebhookDeliveriesView(ApiView):
    """One endpoint's recent deliveries."""

    read_perms = (ENDPOINT_PERMS % "view",)
    write_perms = (ENDPOINT_PERMS % "change",)

    @extend_schema(
        operation_id="webhooks_deliveries_list",
        parameters=[STATUS_PARAMETER, LIMIT_PARAMETER],
        responses=DeliveryListSerializer,
        description="The endpoint's most recent deliveries, newest first: each event's type, "
        "the state of its delivery, the last answer's status, time and first 1 KB.",
    )
    def get(self, request: Request, pk: int) -> Response:
        endpoint = _endpoint(pk)
        raw_limit = request.query_params.get("limit", str(DELIVERIES_DEFAULT))
        if not re.fullmatch(r"[0-9]{1,4}", raw_limit) or not 1 <= int(raw_limit) <= DELIVERIES_MAX:
            raise exceptions.ValidationError(
                {"limit": [f"Give a whole number from 1 to {DELIVERIES_MAX}."]}
            )
        rows = endpoint.deliveries.select_related("event").order_by("-id")
        wanted = request.query_params.get("status")
        if wanted is not None:
            if wanted not in WebhookDelivery.Status.values:
                raise exceptions.ValidationError(
                    {"status": ["Give one of: " + ", ".join(WebhookDelivery.Status.values)]}
                )
            rows = rows.filter(status=wanted)
        deliveries = rows[: int(raw_limit)]
        return Response({"deliveries": DeliverySerializer(deliveries, many=True).data})


class WebhookReplayView(ApiView):
    """Send one delivery again."""

    read_perms = ("webhooks.view_webhookdelivery",)
    write_perms = ("webhooks.change_webhookdelivery",)

    @extend_schema(
        operation_id="webhooks_deliveries_replay",
        request=None,
        responses={
            202: DeliverySerializer,
            409: OpenApiResponse(
                ErrorSerializer, description="The endpoint is disabled: enable it first."
            ),
        },
        description="Send the delivery's event to its endpoint again, as a new delivery due "
        "at once with the same `webhook-id` (receivers that saw it may drop it as a "
        "duplicate). Answers the new delivery.",
    )
    def post(self, request: Request, pk: int) -> Response:
        rows = WebhookDelivery.objects.filter(pk=pk) if pk <= MAX_ID else None
        if rows is None or not rows.exists():
            raise exceptions.NotFound(f"No webhook delivery {pk}.")
        result = services.webhook_deliveries_replay(queryset=rows)
        if not result.replayed:
            raise Conflict(
                "Its endpoint is disabled; enable it first (PATCH enabled: true).",
                code="endpoint_disabled",
            )
        [replayed] = result.replayed
        replayed = WebhookDelivery.objects.select_related("event").get(pk=replayed.pk)
        return Response(DeliverySerializer(replayed).data, status=status.HTTP_202_ACCEPTED)
