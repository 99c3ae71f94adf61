"""Making notifications: one validated notification (``notification_build``), and a
campaign's notifications, a chunk of recipients at a time (``CampaignFiller``).

Below the task layer, so the consumer's campaign task and the services share it. Nothing
here rings a doorbell: callers ring for what a step returns once it has committed.

A campaign is created chunk by chunk (``NOTIFY_CAMPAIGN_CHUNK`` recipients, one transaction
each): read the next recipients after the campaign's cursor, one conditional UPDATE moves
the cursor (a second filler of the same campaign finds it moved and backs off), build their
notifications (and the list of those skipped, with why), one INSERT saves the notifications
and one the skipped, and an UPDATE adds them to the counts. The number of queries per chunk
does not depend on its size, and a creation stopped midway resumes after the last chunk it
committed. A campaign's message (one text, one time) goes faster: a step of ten chunks
inserts in one statement everyone SQL finds surely reachable (``campaign_sets``) and checks
only the others here.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest, QueryDict
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from notifications import campaign_rows, campaign_sets, selectors
from notifications.channels import channel_order, senders_for
from notifications.models import Campaign, CampaignSkip, Notification, Template, UserContact
from notifications.operations import metrics
from notifications.preferences import digests
from notifications.preferences.defaults import default_category
from notifications.preferences.models import Category, Preference
from notifications.preferences.quiet_hours import zone_of
from notifications.rendering import TemplateRenderer, default_language, validate_context
from notifications.senders.base import SkipChannel
from notifications.suppression.services import (
    active_addresses,
    normalize_address,
    suppressed_among,
)

Status = Notification.Status
IDEMPOTENCY_KEY_MAX_LENGTH = Notification._meta.get_field("idempotency_key").max_length
# Fields whose rows the caller gives (validating them would cost a query per notification).
RELATED = ["user", "campaign", "template", "category", "digest", "telegram_link"]


# --- one notification -------------------------------------------------------------------------


def validate_channels(channels: list[str] | None) -> list[str]:
    """The chain asked for (a subset of the channels, in order); raises ``ValidationError``."""
    if not channels:
        return []
    if not isinstance(channels, (list, tuple)) or not all(isinstance(c, str) for c in channels):
        raise ValidationError({"channels": _("Give the channels as a list of names.")})
    unknown = [c for c in channels if c not in settings.CHANNELS]
    if unknown:
        raise ValidationError(
            {
                "channels": _("Unknown channel %(names)s; choose from %(known)s.")
                % {"names": ", ".join(map(repr, unknown)), "known": ", ".join(settings.CHANNELS)}
            }
        )
    if len(set(channels)) != len(channels):
        raise ValidationError({"channels": _("Name each channel at most once.")})
    return list(channels)


def validate_key(key: str | None) -> str | None:
    if key is None or key == "":
        return None
    if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise ValidationError(
            {
                "idempotency_key": _(
                    "The idempotency key is %(length)s characters long; at most %(limit)s are "
                    "allowed."
                )
                % {"length": len(key), "limit": IDEMPOTENCY_KEY_MAX_LENGTH}
            }
        )
    if "\x00" in key:
        raise ValidationError(
            {"idempotency_key": _("The idempotency key contains a NUL character.")}
        )
    return key


def validate_times(
    now: datetime, send_at: datetime | None, expires_at: datetime | None
) -> datetime | None:
    """The expiry to store: ``expires_at``, else ``NOTIFY_MESSAGE_TTL`` after sending starts."""
    for name, value in (("send_at", send_at), ("expires_at", expires_at)):
        if value is not None and timezone.is_naive(value):
            raise ValidationError({name: _("Give a time with its time zone.")})
    start = max(send_at or now, now)
    if expires_at is not None:
        if expires_at <= start:
            raise ValidationError(
                {"expires_at": _("The expiry must be after the time the notification is sent.")}
            )
        return expires_at
    ttl = settings.NOTIFY_MESSAGE_TTL
    return start + timedelta(seconds=ttl) if ttl else None


def validate_options(
    *,
    channels: list[str] | None = None,
    send_at: datetime | None = None,
    expires_at: datetime | None = None,
    checking_expiry: bool = True,
) -> None:
    """The checks ``notification_create`` makes of its options, for forms; raises
    ``ValidationError``."""
    validate_channels(channels)
    if checking_expiry:
        validate_times(timezone.now(), send_at, expires_at)


def contact_of(user: AbstractBaseUser) -> UserContact | None:
    try:
        return user.contact
    except ObjectDoesNotExist:
        return None


def notification_build(
    *,
    user: AbstractBaseUser,
    message: str = "",
    subject: str = "",
    channels: list[str] | None = None,
    send_at: datetime | None = None,
    expires_at: datetime | None = None,
    idempotency_key: str | None = None,
    queue: bool | None = None,
    now: datetime | None = None,
    template: Template | None = None,
    context: dict[str, Any] | None = None,
    renderer: TemplateRenderer | None = None,
    contact: UserContact | None = None,
    campaign: Campaign | None = None,
    category: Category | None = None,
    digest_key: str = "",
) -> Notification:
    """A validated, unsaved notification (what ``notification_create`` saves).

    With a ``template`` (or a ``renderer`` of one), its texts are rendered for ``user`` in
    their contact's language with ``context``, checked, and kept on the notification
    (``rendered``); its ``message`` and ``subject`` are then the email's. ``queue``: queued
    (or scheduled) at once; default ``NOTIFY_SEND_ON_CREATE``. ``category``: what it is about
    (None: the template's, else the default category, read when it is sent). ``digest_key``
    (or the template's): it waits ``batched`` to be collected into a digest
    (``preferences.digests``), which needs a category with a digest window. Runs no query.
    Raises ``ValidationError`` with a message per field (a missing template variable
    included).
    """
    now = now or timezone.now()
    key = validate_key(idempotency_key)
    rendered: dict[str, Any] = {}
    if template is not None and renderer is None:
        renderer = TemplateRenderer(template, context)
    if renderer is not None:
        if message:
            raise ValidationError({"message": _("Give a message or a template, not both.")})
        try:
            result = renderer.render(user, contact if contact is not None else contact_of(user))
        except ValidationError as err:
            raise ValidationError({"template": err.messages}) from None
        message, subject = result.email_text, result.email_subject
        rendered = result.as_json(renderer.template.key)
    elif context:
        raise ValidationError({"context": _("A context is used only with a template.")})
    template_used = renderer.template if renderer is not None else None
    if category is None and template_used is not None:
        category = template_used.category
    digest_key = digest_key or (template_used.digest_key if template_used is not None else "")
    if digest_key:
        if category is None:
            raise ValidationError(
                {"digest_key": _("A digest key needs a category with a digest window.")}
            )
        digest_key = digests.validate_key(digest_key, category)
    notification = Notification(
        user=user,
        message=message,
        subject=subject or "",
        channels=validate_channels(channels),
        send_at=send_at,
        expires_at=validate_times(now, send_at, expires_at),
        idempotency_key=key,
        rendered=rendered,
        template=template_used,
        campaign=campaign,
        category=category,
        digest_key=digest_key,
    )
    # The message's own validation covers the database's check constraint, which Django
    # would check with a query per notification.
    notification.full_clean(
        exclude=[*RELATED, "idempotency_key"] if key else RELATED,
        validate_constraints=False,
    )
    # Made here: whether it is queued is decided, so the save signal leaves it alone
    # (``services.notification_queue_saved``).
    notification._built = True
    if digest_key:  # collected into a digest once saved (services), which is rung instead
        notification.status = Status.BATCHED
        notification.queued_at = now
        return notification
    if queue if queue is not None else settings.NOTIFY_SEND_ON_CREATE:
        later = send_at is not None and send_at > now
        notification.status = Status.SCHEDULED if later else Status.QUEUED
        notification.queued_at = now
        notification.next_attempt_at = send_at if later else now
    return notification


def due_of(notifications: list[Notification]) -> list[tuple[int, datetime | None]]:
    """(id, when) of those queued or scheduled: the doorbells to ring."""
    return [
        (n.pk, n.next_attempt_at)
        for n in notifications
        if n.status in (Status.QUEUED, Status.SCHEDULED)
    ]


# --- who can be reached -----------------------------------------------------------------------


def unreachable(
    user: AbstractBaseUser,
    contact: UserContact | None,
    channels: list[str],
    turned_off: set[str] | frozenset[str] = frozenset(),
    suppressed: set[str] | frozenset[str] = frozenset(),
) -> dict[str, str] | None:
    """None when some channel of the chain has an address, no opt-out and is not turned off
    (``turned_off``: the channels the user turned off for the category) for this user; else
    channel -> "opted_out" / "turned_off" / "no_address" / "suppressed" (an email address
    among ``suppressed``, normalized). (Whether a channel is configured is the consumer's
    business: it may be by the time the notification is sent.)"""
    contact = contact if contact is not None else UserContact(user=user)
    why: dict[str, str] = {}
    for channel in channel_order(channels):
        if getattr(contact, f"{channel}_opt_out", False):
            why[channel] = "opted_out"
            continue
        if channel in turned_off:
            why[channel] = "turned_off"
            continue
        senders = senders_for(channel)
        try:
            if senders:
                address = senders[0].address(contact)
                if channel == "email" and suppressed and normalize_address(address) in suppressed:
                    why[channel] = "suppressed"
                    continue
                return None
        except SkipChannel:
            pass
        why[channel] = "no_address"
    return why


def skip_reason(why: dict[str, str]) -> str:
    if why and all(value == "opted_out" for value in why.values()):
        return CampaignSkip.Reason.OPTED_OUT
    if why and all(value in ("opted_out", "turned_off") for value in why.values()):
        return CampaignSkip.Reason.TURNED_OFF
    return CampaignSkip.Reason.NO_ADDRESS


def local_send_time(wall: str, contact: UserContact | None) -> datetime | None:
    """``wall`` (``2026-12-07T10:00``) in the recipient's time zone (else the service's)."""
    if not wall:
        return None
    return datetime.fromisoformat(wall).replace(tzinfo=zone_of(contact))


def send_time(
    send_at: datetime | None, local_send_at: str, contact: UserContact | None
) -> datetime | None:
    """When to send: ``send_at``, or ``local_send_at`` on the recipient's own clock; raises
    ``ValidationError`` when both are given, or the local time is not one."""
    if not local_send_at:
        return send_at
    if send_at is not None:
        raise ValidationError(
            {"send_at_local": _("Give a time to send at, or a local time, not both.")}
        )
    try:
        wall = validate_local_time(local_send_at)
    except ValidationError:
        raise ValidationError(
            {
                "send_at_local": _(
                    "Give the local date and time without an offset, e.g. 2026-12-07T10:00."
                )
            }
        ) from None
    return local_send_time(wall, contact)


def validate_local_time(wall: str | None) -> str:
    """A wall time to send at in each recipient's zone, as stored (``2026-12-07T10:00``);
    raises ``ValidationError`` for one that is not a date and time without an offset."""
    if not wall:
        return ""
    try:
        parsed = datetime.fromisoformat(str(wall).strip())
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is not None:
        raise ValidationError(
            {
                "local_send_at": _(
                    "Give the local date and time without an offset, e.g. 2026-12-07T10:00."
                )
            }
        )
    return parsed.strftime("%Y-%m-%dT%H:%M")


# --- a campaign's audience ----------------------------------------------------------------------


class CampaignError(Exception):
    """The campaign can't be created (its filter, its operator or its template is gone)."""


def changelist_queryset(model_label: str, query: str, user: AbstractBaseUser) -> QuerySet:
    """The rows the admin's changelist of ``model_label`` shows ``user`` for the query string
    ``query`` (its filters and search), evaluated now. Raises ``CampaignError``."""
    model = apps.get_model(model_label)
    try:
        model_admin = admin.site.get_model_admin(model)
    except NotRegistered:
        raise CampaignError(
            _("The admin has no list of %(model)s.") % {"model": model_label}
        ) from None
    request = HttpRequest()
    request.method = "GET"
    request.GET = QueryDict(query)
    request.user = user
    request.path = request.path_info = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    request.META.update(SERVER_NAME="127.0.0.1", SERVER_PORT="80")
    if not model_admin.has_view_or_change_permission(request):
        raise CampaignError(
            _("%(user)s may no longer see that list.") % {"user": user.get_username()}
        )
    try:
        changelist = model_admin.get_changelist_instance(request)
    except admin.options.IncorrectLookupParameters:
        raise CampaignError(
            _("The list's filter is no longer valid: %(query)s") % {"query": query}
        ) from None
    return changelist.queryset


def audience_users(campaign: Campaign) -> QuerySet:
    """The users a campaign goes to, as a query re-evaluated now."""
    User = get_user_model()
    users = User.objects.all()
    if campaign.audience_all:
        if campaign.created_by is None:
            raise CampaignError(_("The operator who started it no longer exists."))
        rows = changelist_queryset(
            campaign.audience_model, campaign.audience_query, campaign.created_by
        ).order_by()
        model = apps.get_model(campaign.audience_model)
        if model is User:
            # The list's own rows: a chunk is then read by an index range on the id (a
            # semi-join ``pk IN (the list)`` made each chunk scan the whole list).
            return rows.select_related(None)
        return users.filter(pk__in=rows.values("user_id"))
    return users.filter(pk__in=campaign.audience_ids)


# --- a campaign's notifications, a chunk at a time ------------------------------------------


@dataclass
class FillStep:
    """What one step did: its doorbells (ring them: it has committed), and whether creation
    is over."""

    due: list[tuple[int, datetime | None]] = field(default_factory=list)
    created: int = 0
    skipped: int = 0
    done: bool = False
    audience: int = 0  # the campaign's audience: its doorbells are sized for all of it
    # This step ended the creation (not: found it over); the campaign's notifications then.
    finished: bool = False
    recipients: int = 0


_UNREAD = object()  # a filler's suppressed addresses, before it reads them


class CampaignFiller:
    """Creates a campaign's notifications, one chunk of recipients per ``step()``."""

    def __init__(
        self,
        campaign_id: int,
        *,
        chunk: int | None = None,
        count: Callable[[str, list[Notification]], None] | None = None,
    ) -> None:
        self.campaign_id = campaign_id
        self.chunk = chunk or settings.NOTIFY_CAMPAIGN_CHUNK
        # What counts a committed step's notifications (the metric), or reports them to
        # the process that counts them (``fill_process``).
        self.count = count or metrics.notifications_created
        # A set-based step's recipients (``campaign_sets``): ``chunk`` when given.
        self.set_chunk = chunk or self.chunk * campaign_sets.CHUNKS
        self._audience: QuerySet | None = None
        self._renderer: TemplateRenderer | None = None
        self._category: Category | None = None  # whose rules apply: the default if none
        self._named: Category | None = None  # the category its rows store
        self._suppressions: frozenset[str] | object | None = _UNREAD
        self._reach_read: campaign_sets.Reach | object | None = _UNREAD
        self._ids: list[int] | None = None  # an audience of ids, sorted

    def step(self) -> FillStep:
        """Create the next chunk in one transaction (a fixed number of queries); raises
        nothing for a campaign that can't be created: it ends ``failed``, with why."""
        campaign = Campaign.objects.select_related("template", "created_by").get(
            pk=self.campaign_id
        )
        if campaign.state != Campaign.State.CREATING:
            return FillStep(done=True)
        with translation.override(campaign.language or default_language()):
            try:
                return self._step(campaign)
            except (CampaignError, ValidationError) as err:
                message = "; ".join(err.messages) if isinstance(err, ValidationError) else str(err)
                Campaign.objects.filter(pk=campaign.pk, state=Campaign.State.CREATING).update(
                    state=Campaign.State.FAILED, error=message, updated_at=timezone.now()
                )
                return FillStep(done=True)

    def _prepare(self, campaign: Campaign) -> None:
        if self._audience is None:
            self._audience = audience_users(campaign)
        if campaign.template_id and self._renderer is None:
            self._renderer = TemplateRenderer(campaign.template, campaign.context)
        if not campaign.template_id and not campaign.message:
            raise CampaignError(_("Its template was deleted."))
        if self._category is None:
            # What its rows store: the category the campaign (or its template) names, else
            # none, as a notification created alone without one (the default's rules apply
            # to it when it is sent). Not the default category's id: each row would then
            # have its foreign key checked, a sixth of a million rows' creation on PostgreSQL.
            self._named = campaign.category or (
                campaign.template.category if campaign.template_id else None
            )
            self._category = self._named or default_category()

    def _suppressed(self, campaign: Campaign, users: list) -> frozenset[str]:
        """The suppressed email addresses of ``users``, when the campaign's chain has email:
        every suppressed address, read once per filler while there are not many (most
        services have none: then nothing is checked), else one query per chunk."""
        if "email" not in channel_order(campaign.channels):
            return frozenset()
        if self._suppressions is _UNREAD:
            self._suppressions = active_addresses()
        if self._suppressions is not None:
            return self._suppressions
        return frozenset(
            suppressed_among(
                (contact_of(user) or UserContact(user=user)).effective_email for user in users
            )
        )

    def _turned_off(self, users: list) -> dict[int, set[str]]:
        """The channels each of ``users`` turned off for the campaign's category (one query;
        none for a required category, which users don't choose)."""
        category = self._category
        if category.required or not users:
            return {}
        chosen: dict[int, dict[str, bool]] = {}
        for user_id, channel, enabled in Preference.objects.filter(
            user_id__in=[u.pk for u in users], category=category
        ).values_list("user_id", "channel", "enabled"):
            chosen.setdefault(user_id, {})[channel] = enabled
        return {
            user.pk: {
                channel
                for channel in settings.CHANNELS
                if not chosen.get(user.pk, {}).get(channel, category.channel_default(channel))
            }
            for user in users
        }

    def _reach(self, campaign: Campaign) -> campaign_sets.Reach | None:
        """The set-based condition for this campaign (``campaign_sets``), when its
        notifications are one message sent at one time and the database can take a set."""
        if self._renderer is not None or campaign.local_send_at or not campaign_sets.supported():
            return None
        if self._reach_read is _UNREAD:
            suppressed = False
            if "email" in channel_order(campaign.channels):
                if self._suppressions is _UNREAD:
                    self._suppressions = active_addresses()
                suppressed = self._suppressions != frozenset()
            self._reach_read = campaign_sets.reach_for(
                campaign.channels, self._category, addresses_suppressed=suppressed
            )
        return self._reach_read

    def _next_ids(self, campaign: Campaign, size: int) -> tuple[list[int], int, bool]:
        """The next ``size`` audience ids after the cursor, the cursor after them, and
        whether they are the last (a list of ids is cut in memory, not sent to the database
        whole for each step)."""
        if campaign.audience_all:
            ids = list(
                self._audience.filter(pk__gt=campaign.cursor)
                .order_by("pk")
                .values_list("pk", flat=True)[:size]
            )
            return ids, (ids[-1] if ids else campaign.cursor), len(ids) < size
        if self._ids is None:
            self._ids = sorted(set(campaign.audience_ids))
        start = bisect.bisect_right(self._ids, campaign.cursor)
        window = self._ids[start : start + size]
        return window, (window[-1] if window else campaign.cursor), start + size >= len(self._ids)

    def _step(self, campaign: Campaign) -> FillStep:
        self._prepare(campaign)
        now = timezone.now()
        reach = self._reach(campaign)
        with transaction.atomic():
            inserted: list[tuple[int, int]] = []
            prototype: Notification | None = None  # a message's: built once, validated
            if reach is not None:
                ids, cursor, done = self._next_ids(campaign, self.set_chunk)
            else:
                users = list(
                    self._audience.filter(pk__gt=campaign.cursor)
                    .select_related("contact")
                    .order_by("pk")[: self.chunk]
                )
                done = len(users) < self.chunk
                cursor = users[-1].pk if users else campaign.cursor
            changes: dict[str, Any] = {"cursor": cursor, "updated_at": now}
            if done:
                changes.update(state=Campaign.State.READY, created_all_at=now)
            # The campaign's row, held to the commit: a second filler finds the cursor moved.
            claimed = Campaign.objects.filter(
                pk=campaign.pk, state=Campaign.State.CREATING, cursor=campaign.cursor
            ).update(**changes)
            if not claimed:  # another filler took this chunk, or it was cancelled meanwhile
                return FillStep(done=False)
            if reach is not None:
                prototype = self._prototype(campaign, ids, now)
                if prototype is not None:
                    inserted = campaign_sets.insert(prototype, ids, reach)
                taken = {user for _, user in inserted}
                users = selectors.users_by_id([pk for pk in ids if pk not in taken])
            notifications, prototype, rows, skips = self._classify(campaign, users, now, prototype)
            Campaign.objects.filter(pk=campaign.pk).update(
                recipients=F("recipients") + len(inserted) + len(notifications) + len(rows),
                skipped=F("skipped") + len(skips),
            )
            created = Notification.objects.bulk_create(notifications) if notifications else []
            due = due_of(created)
            if inserted:
                due += [(pk, prototype.next_attempt_at) for pk, _ in inserted]
            if rows:
                due += campaign_rows.insert(prototype, rows)
            count = len(created) + len(inserted) + len(rows)
            if prototype is not None:
                created += [prototype] * (len(inserted) + len(rows))  # what the metrics count
            if skips:
                CampaignSkip.objects.bulk_create(skips)
            transaction.on_commit(lambda: self.count("campaign", created))
        return FillStep(
            due=due,
            created=count,
            skipped=len(skips),
            done=done,
            audience=campaign.audience_size,
            finished=done,
            recipients=campaign.recipients + count,
        )

    def _prototype(self, campaign: Campaign, ids: list[int], now: datetime) -> Notification | None:
        """The campaign's message built (and validated) for the first of ``ids``: every
        recipient's row is this but for the user; None when it does not validate (then
        each recipient is checked in turn, and skipped with why)."""
        if not ids:
            return None
        # Only its id is in the row (and the INSERT takes each recipient's own): no query.
        user = get_user_model()(pk=ids[0])
        try:
            return self._build(campaign, user, UserContact(user=user), campaign.send_at, now)
        except ValidationError:
            return None

    def _build(
        self,
        campaign: Campaign,
        user: AbstractBaseUser,
        contact: UserContact | None,
        send_at: datetime | None,
        now: datetime,
    ) -> Notification:
        """The campaign's notification for ``user``: its message, or its template rendered
        for them; raises ``ValidationError``."""
        built = notification_build(
            user=user,
            message="" if self._renderer else campaign.message,
            subject="" if self._renderer else campaign.subject,
            channels=campaign.channels,
            send_at=send_at,
            queue=True,
            now=now,
            renderer=self._renderer,
            contact=contact,
            campaign=campaign,
            category=self._named,
        )
        # The campaign's message, as every recipient's row has it (not each one's rendering).
        built.campaign_message = self._renderer is None
        return built

    def _classify(
        self,
        campaign: Campaign,
        users: list,
        now: datetime,
        prototype: Notification | None,
    ) -> tuple[
        list[Notification], Notification | None, list[campaign_rows.Row], list[CampaignSkip]
    ]:
        """Each of ``users`` checked and built in Python: a template's notifications, rows of
        the message's ``prototype`` (built here from the first when None), and the skipped."""
        notifications: list[Notification] = []  # a template's: rendered for each
        rows: list[campaign_rows.Row] = []  # and a row for each recipient
        skips: list[CampaignSkip] = []
        turned_off = self._turned_off(users)
        suppressed = self._suppressed(campaign, users)
        for user in users:
            contact = contact_of(user)
            why = unreachable(
                user,
                contact,
                campaign.channels,
                turned_off.get(user.pk, frozenset()),
                suppressed,
            )
            if why is not None:
                skips.append(
                    CampaignSkip(
                        campaign=campaign, user=user, reason=skip_reason(why), channels=why
                    )
                )
                continue
            send_at = local_send_time(campaign.local_send_at, contact) or campaign.send_at
            try:
                if prototype is not None:  # the same message: only whom and when differ
                    rows.append(_row(user.pk, send_at, now))
                    continue
                built = self._build(campaign, user, contact, send_at, now)
                if self._renderer is not None:  # each recipient's own text
                    notifications.append(built)
                else:
                    prototype = built
                    rows.append(_row(user.pk, send_at, now))
            except ValidationError as err:
                skips.append(
                    CampaignSkip(
                        campaign=campaign,
                        user=user,
                        reason=CampaignSkip.Reason.INVALID,
                        detail="; ".join(err.messages),
                    )
                )
        return notifications, prototype, rows, skips


def _row(user_id: int, send_at: datetime | None, now: datetime) -> campaign_rows.Row:
    """A recipient's row of a campaign's message, queued or scheduled as
    ``notification_build(queue=True)`` makes it."""
    later = send_at is not None and send_at > now
    return campaign_rows.Row(
        user_id=user_id,
        send_at=send_at,
        expires_at=validate_times(now, send_at, None),
        status=Status.SCHEDULED if later else Status.QUEUED,
        next_attempt_at=send_at if later else now,
    )


def campaign_language() -> str:
    """The language a new campaign's messages (skip details, errors) are written in."""
    return translation.get_language() or default_language()


def check_campaign_content(
    *,
    sample: AbstractBaseUser | None,
    message: str,
    subject: str,
    template: Template | None,
    context: dict[str, Any] | None,
    channels: list[str] | None,
    send_at: datetime | None,
) -> Notification | None:
    """The campaign's content built for one sample recipient (the preview, and the check
    that refuses a campaign whose template lacks a variable); raises ``ValidationError``."""
    if template is not None:
        validate_context(context)
    if sample is None:
        validate_options(channels=channels, send_at=send_at)
        return None
    return notification_build(
        user=sample,
        message="" if template is not None else message,
        subject="" if template is not None else subject,
        channels=channels,
        send_at=send_at,
        template=template,
        context=context,
        queue=True,
    )
