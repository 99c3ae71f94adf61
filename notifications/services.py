"""What operators and code do with notifications: create, queue, resend, cancel, edit;
campaigns (one message to many); a contact's test notification.

The admin actions, the admin's forms and the HTTP API call these; they queue through
``tasks.ring`` after their transaction commits. Each bulk operation is a fixed number of
queries whatever the selection's size: a count by status, one UPDATE, one read of the ids it
changed, whose doorbells (and only theirs) are rung after commit.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, F, QuerySet, Value, When
from django.utils import timezone, translation
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from notifications import cancelling, selectors, tasks, telegram_bot
from notifications.broadcast import services as broadcast
from notifications.channels import channel_order
from notifications.composing import (
    CampaignFiller,
    check_campaign_content,
    contact_of,
    due_of,
    notification_build,
    send_time,
    validate_local_time,
)
from notifications.composing import validate_options as validate_options
from notifications.models import Campaign, Notification, TelegramLink, Template, UserContact
from notifications.operations import metrics
from notifications.preferences import digests
from notifications.preferences import services as preference_services
from notifications.preferences.defaults import default_category
from notifications.preferences.models import Category
from notifications.rendering import default_language
from notifications.senders.base import DeliveryError

Status = Notification.Status

# Why a selected notification was left alone, by its status.
LEFT_ALONE_REASONS = {
    Status.PENDING: gettext_lazy("not queued yet"),
    Status.SCHEDULED: gettext_lazy("scheduled"),
    Status.QUEUED: gettext_lazy("already queued"),
    Status.SENDING: gettext_lazy("being sent"),
    Status.SENT: gettext_lazy("already sent"),
    Status.DELIVERED: gettext_lazy("delivered"),
    Status.UNDELIVERED: gettext_lazy("undelivered"),
    Status.FAILED: gettext_lazy("failed"),
    Status.EXPIRED: gettext_lazy("expired"),
    Status.CANCELLED: gettext_lazy("cancelled"),
    Status.SUPPRESSED: gettext_lazy("suppressed by the recipient's choices"),
    Status.BATCHED: gettext_lazy("waiting in a digest"),
}


def with_skipped(text: str, skipped: Counter, reasons: dict) -> str:
    """``text`` followed by what was skipped and why: ``12 queued, 3 skipped: 3 already
    sent`` (``skipped`` counts by reason code, ``reasons`` gives each code's words)."""
    if not skipped:
        return text
    why = ", ".join(
        _("%(count)s %(reason)s") % {"count": count, "reason": reasons[code]}
        for code, count in sorted(skipped.items())
    )
    total = sum(skipped.values())
    return ngettext(
        "%(changed)s, %(count)s skipped: %(reasons)s",
        "%(changed)s, %(count)s skipped: %(reasons)s",
        total,
    ) % {"changed": text, "count": total, "reasons": why}


def _changed(verb: str, count: int) -> str:
    """``12 queued`` in the active language, for the verbs the bulk operations use."""
    if verb == "queued":
        return ngettext("%(count)s queued", "%(count)s queued", count) % {"count": count}
    if verb == "queued again":
        return ngettext("%(count)s queued again", "%(count)s queued again", count) % {
            "count": count
        }
    if verb == "cancelled":
        return ngettext("%(count)s cancelled", "%(count)s cancelled", count) % {"count": count}
    return f"{count} {verb}"


@dataclass
class BulkResult:
    """How many rows a bulk operation changed, and why it left the others alone."""

    changed: int = 0
    left_alone: Counter = field(default_factory=Counter)

    def describe(self, verb: str) -> str:
        """E.g. ``12 queued, 3 skipped: 3 already sent`` (``verb``: queued, queued again,
        cancelled), in the active language."""
        return with_skipped(_changed(verb, self.changed), self.left_alone, LEFT_ALONE_REASONS)


def _ring_after_commit(due: list[tuple[int, datetime | None]]) -> None:
    """After commit, ring now for the rows due now and at their time for scheduled ones."""
    if due:
        _queue_after_commit(
            lambda: tasks.ring_due(due),
            f"{len(due)} notification(s) saved as queued but not rung",
        )


def _created_after_commit(
    source: str, notifications: list[Notification], due: list[tuple[int, datetime | None]]
) -> None:
    """After commit, count new ``notifications`` as created by ``source`` (operations.metrics)
    and ring for ``due``, as ``_ring_after_commit`` does: one callback."""
    what = f"{len(due)} notification(s) saved as queued but not rung"

    def created() -> None:
        metrics.notifications_created(source, notifications)
        if due:
            tasks.queue_or_leave_to_sweeper(lambda: tasks.ring_due(due), what)

    transaction.on_commit(created)


def _queue_after_commit(put: Callable[[], object], what: str) -> None:
    """After commit, ``put`` work in the queue, or leave it to the sweeper
    (``tasks.queue_or_leave_to_sweeper``)."""
    transaction.on_commit(lambda: tasks.queue_or_leave_to_sweeper(put, what))


# Ids per statement when a bulk action changes the rows it read (SQLite takes at most 250,000
# parameters a statement as Debian builds it, 32,766 as SQLite's own default).
BULK_CHUNK = 10_000


def _move_to_queued(
    queryset: QuerySet[Notification], from_statuses: set[str], *, reset: bool
) -> BulkResult:
    counts = selectors.count_by_status(queryset)
    now = timezone.now()
    # Marks the rows this call changes, so only their doorbells are rung (a coincidence
    # with a concurrent call would only ring a few doorbells twice, which is harmless).
    stamp = now + timedelta(microseconds=random.randrange(1000))
    future = When(send_at__gt=now, then=F("send_at"))
    changes: dict[str, Any] = {
        "status": Case(
            When(send_at__gt=now, then=Value(Status.SCHEDULED)), default=Value(Status.QUEUED)
        ),
        "queued_at": stamp,
        "next_attempt_at": Case(future, default=Value(now)),
    }
    if reset:
        ttl = settings.NOTIFY_MESSAGE_TTL
        changes.update(rounds=0, last_error="", channel="", sent_at=None, progress={})
        if ttl:
            # A new run of one that expired gets a new lifetime.
            changes["expires_at"] = Case(
                When(expires_at__lte=now, then=Value(now + timedelta(seconds=ttl))),
                default=F("expires_at"),
            )
    with transaction.atomic():
        # The rows to change are read first, by the selection's own conditions; the rest is by
        # their ids. (The rows changed were read back by their stamp, which no index holds: a
        # click on ten rows read every row waiting, ~50 ms beside a million.) A row that came
        # to match the selection since it was read is left as it is, as if clicked before.
        chosen = list(
            queryset.filter(status__in=from_statuses).order_by().values_list("pk", "send_at")
        )
        changed = 0
        due: list[tuple[int, datetime | None]] = []
        for part in tasks.chunked(chosen, BULK_CHUNK):
            rows = Notification.objects.filter(pk__in=[pk for pk, _ in part])
            done = rows.filter(status__in=from_statuses).update(**changes)
            changed += done
            if done == len(part):  # each one due as ``changes`` set it
                due += [(pk, send_at if send_at and send_at > now else now) for pk, send_at in part]
            elif done:  # some changed meanwhile (sent, cancelled): those this call changed
                due += (
                    rows.filter(queued_at=stamp, status__in=(Status.QUEUED, Status.SCHEDULED))
                    .order_by()
                    .values_list("pk", "next_attempt_at")
                )
        _ring_after_commit(due)
    return BulkResult(
        changed=changed,
        left_alone=_left_alone(counts, from_statuses),
    )


def notifications_queue(*, queryset: QuerySet[Notification]) -> BulkResult:
    """Queue the pending and failed notifications of ``queryset`` (failed ones start afresh:
    a new run, with no channel blocked by the last one)."""
    return _move_to_queued(queryset, {Status.PENDING, Status.FAILED}, reset=True)


RESENDABLE = {*selectors.FINAL, Status.PENDING}  # what is done, or not yet queued


def notifications_resend(*, queryset: QuerySet[Notification]) -> BulkResult:
    """Queue again, explicitly, notifications that are done (sent or not) or pending."""
    return _move_to_queued(queryset, RESENDABLE, reset=True)


CANCELLABLE = cancelling.CANCELLABLE


def _left_alone(counts: dict[str, int], changeable: set[str] | frozenset[str]) -> Counter:
    """Of a bulk action's rows by status, those it leaves alone (not in ``changeable``)."""
    return Counter({s: n for s, n in counts.items() if s not in changeable})


def notifications_cancel(*, queryset: QuerySet[Notification]) -> BulkResult:
    """Cancel notifications not sent yet: waiting, or being sent. One being sent stops
    before its next provider call (at most ``delivery.CANCEL_CHECK_SECONDS`` later: a job
    waiting for its pacing slot, or behind a slow channel, is not sent); a call already in
    flight finishes, and if the provider took the message it ends ``sent``, as it was. The
    row keeps its lease, so that round can tell. An item waiting in a digest leaves it (the
    digest is made of the items still waiting when it is sent); a digest not sent yet is
    cancelled with its items."""
    counts = selectors.count_by_status(queryset)
    changed = cancelling.cancel(queryset)
    return BulkResult(
        changed=changed,
        left_alone=_left_alone(counts, CANCELLABLE),
    )


def notification_create(
    *,
    user: AbstractBaseUser,
    message: str = "",
    subject: str = "",
    channels: list[str] | None = None,
    send_at: datetime | None = None,
    expires_at: datetime | None = None,
    idempotency_key: str | None = None,
    queue: bool | None = None,
    template: Template | str | None = None,
    context: dict[str, Any] | None = None,
    source: str = "code",
    category: Category | str | None = None,
    digest_key: str = "",
    local_send_at: str = "",
) -> Notification:
    """Create a notification, queued when the transaction commits (``NOTIFY_SEND_ON_CREATE``,
    or ``queue``), or scheduled for ``send_at`` (or ``local_send_at``, ``2026-12-07T10:00``
    on the user's own clock).

    ``category``: a ``Category`` or its key (default: the template's, else the default
    category): its recipients' preferences, quiet hours and caps apply unless it is
    required. ``digest_key``: collected with the user's other notifications of that key and
    category into one digest, sent at the end of the category's digest window.

    ``message`` (and ``subject``), or a ``template`` (a ``Template`` or its key) rendered now
    for the user, in their language, with ``context`` (a JSON object) besides their own fields;
    each channel then gets its own form, kept on the notification.
    ``channels``: the chain for this notification only (a subset of telegram, email, sms, in
    the order to try). ``expires_at``: never delivered after it (default: NOTIFY_MESSAGE_TTL
    after it is due). With an ``idempotency_key`` seen before, returns that notification
    instead of a second one. ``source``: who asks (admin, api, test, code), for the metrics.
    Raises ``django.core.exceptions.ValidationError`` (an empty or
    over-long message, NUL characters, a multi-line subject, an over-long key, an unknown
    template, a variable the template uses missing from ``context``, …).
    """
    if isinstance(template, str):
        template = template_get(key=template)
    category = category_resolve(category, template=template, needed=bool(digest_key))
    send_at = send_time(send_at, local_send_at, contact_of(user))
    notification = notification_build(
        user=user,
        message=message,
        subject=subject,
        channels=channels,
        send_at=send_at,
        expires_at=expires_at,
        idempotency_key=idempotency_key,
        queue=queue,
        template=template,
        context=context,
        category=category,
        digest_key=digest_key,
    )
    if notification.idempotency_key:
        existing = Notification.objects.filter(idempotency_key=notification.idempotency_key).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                notification.save()
                _after_save([notification], source)
        except IntegrityError:  # created by a concurrent call with the same key
            return Notification.objects.get(idempotency_key=notification.idempotency_key)
        return notification
    with transaction.atomic():
        notification.save()
        _after_save([notification], source)
    return notification


def category_resolve(
    category: Category | str | None, *, template: Template | None = None, needed: bool = False
) -> Category | None:
    """A category given by key (``ValidationError`` when there is none), else the template's;
    the default one when ``needed`` (a digest key names one) and nothing else did."""
    if isinstance(category, str):
        category = preference_services.category_get(category)
    if category is None and template is not None:
        category = template.category
    if category is None and needed:
        category = default_category()
    return category


def _after_save(created: list[Notification], source: str) -> None:
    """In the transaction that saved ``created``: items of digests join theirs (or open
    one), and after commit the doorbells ring and the metrics count."""
    batched = [n for n in created if n.status == Status.BATCHED]
    opened: list[tuple[int, datetime | None]] = []
    if batched:
        categories = {
            c.pk: c for c in Category.objects.filter(pk__in={n.category_id for n in batched})
        }
        opened = list(digests.collect(batched, categories))
    _created_after_commit(source, created, due_of(created) + opened)


def notification_queue_saved(*, notification: Notification) -> bool:
    """Queue a notification that code saved new through the ORM
    (``Notification.objects.create(user=u, message="…")``), as ``notification_create`` would
    have: queued (or scheduled for its ``send_at``) with the default lifetime
    (``NOTIFY_MESSAGE_TTL``) when it has no ``expires_at``, and rung once the transaction
    that saved it commits. Rolled back with it, too.

    Only a row still ``pending`` changes (one conditional UPDATE): saving it again, or a row
    already queued, rings nothing. Returns True when it queued it.
    """
    now = timezone.now()
    send_at = notification.send_at
    later = send_at is not None and send_at > now
    changes: dict[str, Any] = {
        "status": Status.SCHEDULED if later else Status.QUEUED,
        "queued_at": now,
        "next_attempt_at": send_at if later else now,
    }
    ttl = settings.NOTIFY_MESSAGE_TTL
    if notification.expires_at is None and ttl:
        changes["expires_at"] = max(send_at or now, now) + timedelta(seconds=ttl)
    with transaction.atomic():
        if not Notification.objects.filter(pk=notification.pk, status=Status.PENDING).update(
            **changes
        ):
            return False
        for name, value in changes.items():
            setattr(notification, name, value)
        _ring_after_commit([(notification.pk, changes["next_attempt_at"])])
    return True


def template_get(*, key: str) -> Template:
    """The template called ``key``; raises ``ValidationError`` when there is none."""
    try:
        return Template.objects.get(key=key)
    except Template.DoesNotExist:
        raise ValidationError(
            {"template": _("There is no template with the key %(key)r.") % {"key": key}}
        ) from None


def notifications_save_new(
    notifications: list[Notification], *, source: str = "code"
) -> list[Notification]:
    """Save validated notifications (``notification_build``) in one bulk insert and ring
    their doorbells after commit; ``source`` as for ``notification_create``."""
    with transaction.atomic():
        created = Notification.objects.bulk_create(notifications)
        _after_save(created, source)
    return created


EDITABLE_FIELDS = ("user", "subject", "message", "channels", "send_at", "expires_at")


def notification_update_pending(*, notification: Notification, fields: list[str]) -> bool:
    """Save the editable ``fields`` of a notification that is still ``pending``; only those
    columns, and only while it is pending (a worker's writes are never overwritten).

    Returns False when it was no longer pending. Raises ``ValidationError``.
    """
    fields = [f for f in fields if f in EDITABLE_FIELDS]
    notification.full_clean(
        exclude=[f.name for f in Notification._meta.fields if f.name not in fields]
    )
    if not fields:
        return Notification.objects.filter(pk=notification.pk, status=Status.PENDING).exists()
    values = {name: getattr(notification, name) for name in fields}
    if "user" in values:
        values["user_id"] = values.pop("user").pk
    if "message" in values:  # its own now, not its campaign's (found by it in a search)
        values["campaign_message"] = False
    return bool(
        Notification.objects.filter(pk=notification.pk, status=Status.PENDING).update(**values)
    )


# Why a contact got no Telegram invite, by code.
INVITE_SKIP_REASONS = {
    "linked": gettext_lazy("already linked to Telegram"),
    "no_email": gettext_lazy("no email address"),
    "no_email_or_phone": gettext_lazy("no email address or phone"),
}


@dataclass
class InviteResult:
    """How many Telegram invites were queued, and why the others were not (by a code of
    ``INVITE_SKIP_REASONS``)."""

    sent: int = 0
    skipped: Counter = field(default_factory=Counter)

    def describe(self) -> str:
        """E.g. ``3 Telegram invites queued, 2 skipped: 1 already linked to Telegram, 1 no
        email address``, in the active language."""
        text = ngettext(
            "%(count)s Telegram invite queued", "%(count)s Telegram invites queued", self.sent
        ) % {"count": self.sent}
        return with_skipped(text, self.skipped, INVITE_SKIP_REASONS)


def _invite_skip_reason(contact: UserContact, channels: list[str]) -> str:
    """The code of why ``contact`` gets no invite, "" when it gets one."""
    if contact.telegram_chat_id and not contact.telegram_blocked:
        return "linked"
    if "email" in channels and contact.effective_email and not contact.email_opt_out:
        return ""
    if "sms" in channels and contact.phone and not contact.sms_opt_out:
        return ""
    return "no_email_or_phone" if "sms" in channels else "no_email"


def telegram_invites_send(
    *,
    contacts: QuerySet[UserContact],
    allow_sms: bool = False,
    language: str | None = None,
) -> InviteResult:
    """Send each contact's user a Telegram invite link as a notification: by email, or by
    email then SMS with ``allow_sms``; never by Telegram. Contacts already linked, or with
    nowhere to send it, are skipped. ``language``: ru or en for every invite (default: each
    recipient's, that is the contact's language, else the service's; never the operator's).

    Raises ``ValidationError`` when Telegram is not configured or the bot's username can't
    be found.
    """
    channels = ["email", "sms"] if allow_sms else ["email"]
    if not settings.TELEGRAM_BOT_TOKEN:
        raise ValidationError(
            _("No invite sent: Telegram is not configured (set TELEGRAM_BOT_TOKEN).")
        )
    try:
        username = telegram_bot.bot_username()
    except DeliveryError as err:
        raise ValidationError(
            _(
                "No invite sent: the bot's username could not be found (%(error)s). Set "
                "TELEGRAM_BOT_USERNAME, or check TELEGRAM_BOT_TOKEN."
            )
            % {"error": err.message}
        ) from None
    result = InviteResult()
    now = timezone.now()
    links, built = [], []
    for contact in contacts.select_related("user"):
        reason = _invite_skip_reason(contact, channels)
        if reason:
            result.skipped[reason] += 1
            continue
        link, invite = telegram_bot.make_link(contact, TelegramLink.Kind.INVITE, username, now)
        links.append(link)
        subject, message = telegram_bot.invite_message(
            invite, language or contact.language or default_language()
        )
        notification = notification_build(
            user=contact.user,
            message=message,
            subject=subject,
            channels=channels,
            expires_at=invite.expires_at,  # a dead link is not worth sending
            now=now,
            queue=True,
        )
        notification.telegram_link = link  # its token, masked in the message, is put in
        built.append(notification)  # when it is sent (invite_tokens)
    with transaction.atomic():
        TelegramLink.objects.bulk_create(links)
        notifications_save_new(built, source="invite")
    result.sent = len(built)
    return result


# --- campaigns ------------------------------------------------------------------------------


def campaign_create(
    *,
    created_by: AbstractBaseUser,
    user_ids: list[int] | None = None,
    audience_model: str = "auth.user",
    audience_query: str | None = None,
    audience_size: int | None = None,
    sample: AbstractBaseUser | None = None,
    name: str = "",
    message: str = "",
    subject: str = "",
    template: Template | None = None,
    context: dict[str, Any] | None = None,
    channels: list[str] | None = None,
    send_at: datetime | None = None,
    local_send_at: str = "",
    category: Category | str | None = None,
    paid_broadcast: bool = False,
    stars_budget: Decimal | None = None,
) -> Campaign:
    """One notification for each user of an audience, queued (or scheduled for ``send_at``,
    or for ``local_send_at`` — ``2026-12-07T10:00`` — in each recipient's own time zone).

    ``paid_broadcast``: its Telegram messages go out with ``allow_paid_broadcast`` (faster,
    0.1 Star each) until ``stars_budget`` Stars are spent (``notifications.broadcast``).

    The audience: ``user_ids``, or (``audience_query`` given) everyone the admin's changelist
    of ``audience_model`` (``auth.user`` or ``notifications.usercontact``) shows for that
    query string, re-evaluated when the notifications are created. Up to
    ``NOTIFY_CAMPAIGN_CHUNK`` ids are created here, in a fixed number of queries; more, or a
    filter, are created by the consumer (``tasks.campaign_fill``) after commit. Users who
    opted out of every channel, turned its ``category`` off on every one, or have no address
    on any, get none and are listed in ``campaign.skips``. Raises ``ValidationError`` (no
    message nor template, both, a template variable missing from ``context`` for the
    ``sample`` recipient, bad channels, time or category, paid broadcast without a budget or
    without Telegram in the chain) before anything is stored.
    """
    validate_paid_broadcast(
        paid_broadcast=paid_broadcast, stars_budget=stars_budget, channels=channels
    )
    if send_at is not None and local_send_at:
        raise ValidationError(
            {"local_send_at": _("Give a time to send at, or a local time, not both.")}
        )
    local_send_at = validate_local_time(local_send_at)
    category = category_resolve(category, template=template)
    if template is None and not (message or "").strip():
        raise ValidationError({"message": _("Write a message, or choose a template.")})
    if template is not None and (message or "").strip():
        raise ValidationError({"message": _("Give a message or a template, not both.")})
    everyone = audience_query is not None
    ids = sorted({int(pk) for pk in user_ids or []})
    if not everyone and not ids:
        raise ValidationError(_("Choose at least one recipient."))
    if sample is None and ids:
        sample = next(iter(selectors.users_by_id(ids[:1])), None)
    check_campaign_content(
        sample=sample,
        message=message,
        subject=subject,
        template=template,
        context=context,
        channels=channels,
        send_at=send_at,
    )
    if not name.strip():
        name = template.name if template is not None else Truncator(message.strip()).chars(60)
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name.strip()[:200],
            created_by=created_by,
            language=translation.get_language() or default_language(),
            template=template,
            context=context or {},
            subject="" if template is not None else subject,
            message="" if template is not None else message,
            channels=list(channels or []),
            send_at=send_at,
            local_send_at=local_send_at,
            category=category,
            audience_model=audience_model,
            audience_ids=[] if everyone else ids,
            audience_query=audience_query or "",
            audience_all=everyone,
            audience_size=audience_size if audience_size is not None else len(ids),
        )
        if paid_broadcast:
            broadcast.campaign_stars_create(campaign_id=campaign.pk, budget=stars_budget)
        if not everyone and len(ids) <= settings.NOTIFY_CAMPAIGN_CHUNK:
            step = CampaignFiller(campaign.pk).step()
            _ring_after_commit(step.due)
        else:
            _queue_after_commit(
                lambda: tasks.start_campaign_fill(campaign.pk),
                f"campaign {campaign.pk} saved but its creation not started",
            )
    campaign.refresh_from_db()
    return campaign


def validate_paid_broadcast(
    *, paid_broadcast: bool, stars_budget: Decimal | None, channels: list[str] | None
) -> None:
    """A paid broadcast needs a Stars budget above 0, in tenths of a Star, and Telegram in
    the campaign's chain; raises ``ValidationError``."""
    if not paid_broadcast:
        return
    if stars_budget is None:
        raise ValidationError(
            {"stars_budget": _("Give a Stars budget: paid broadcast spends 0.1 Star a message.")}
        )
    if stars_budget <= 0 or stars_budget % Decimal("0.1"):
        raise ValidationError(
            {"stars_budget": _("Give a budget above 0 Stars, in tenths of a Star (e.g. 50.5).")}
        )
    if "telegram" not in channel_order(channels):
        raise ValidationError(
            {"paid_broadcast": _("Paid broadcast is Telegram's: tick Telegram in the channels.")}
        )


def campaign_cancel(*, campaign: Campaign) -> BulkResult:
    """Stop a campaign: no more of its notifications are created, and those still waiting
    are cancelled, those being sent stop before their next provider call (those done are
    left alone). Here: the campaign is marked (no consumer claims its notifications from
    then on), those being sent are cancelled, then the rest if they are at most
    ``REQUEST_CHUNK``; else the rest by the consumer, a chunk per transaction, ahead of the
    doorbells (``notifications.cancelling``). ``changed`` counts them all."""
    # Waits for a chunk being created to commit: the cancel below then sees all of them.
    Campaign.objects.filter(pk=campaign.pk, state=Campaign.State.CREATING).update(
        state=Campaign.State.CANCELLED, updated_at=timezone.now()
    )
    here = cancelling.campaign_begin(campaign.pk)
    if not here.done:  # a small campaign's rest here; a large one's all in the consumer
        small = cancelling.campaign_small_rest(campaign.pk, here.last)
        here = small._replace(changed=here.changed + small.changed) if small else here
    if not here.done:
        after = here.last
        _queue_after_commit(
            lambda: tasks.campaign_cancel_rest(campaign.pk, after),
            f"campaign {campaign.pk} cancelled up to notification {after}, the rest not yet",
        )
    # Counted after the mark, not before (a million rows' count would hold it up): those
    # cancelled here are counted as changed, not as left alone.
    counts = selectors.count_by_status(Notification.objects.filter(campaign=campaign))
    earlier = counts.pop(Status.CANCELLED, 0) - here.changed
    if earlier > 0:
        counts[Status.CANCELLED] = earlier
    return BulkResult(
        changed=here.changed + sum(n for s, n in counts.items() if s in CANCELLABLE),
        left_alone=_left_alone(counts, CANCELLABLE),
    )


# --- a contact's test -------------------------------------------------------------------------

TEST_EXPIRY = timedelta(minutes=15)


def contact_send_test(*, contact: UserContact, sent_by: AbstractBaseUser) -> Notification:
    """A short test notification to ``contact`` through the whole chain, in the contact's
    language; it expires unsent after 15 minutes. Raises ``ValidationError``."""
    with translation.override(contact.language or default_language()):
        message = _(
            "This is a test notification from the Notification Service, sent by %(operator)s. "
            "No reply is needed."
        ) % {"operator": sent_by.get_username()}
        subject = _("Test notification")
    return notification_create(
        user=contact.user,
        message=message,
        subject=subject,
        queue=True,
        expires_at=timezone.now() + TEST_EXPIRY,
        source="test",
    )


CONTACT_FIELDS = (
    "telegram_chat_id",
    "email",
    "phone",
    "telegram_opt_out",
    "email_opt_out",
    "sms_opt_out",
    "language",
    "timezone",
    "quiet_hours",
)


def user_contact_update(*, contact: UserContact, changes: dict[str, Any]) -> UserContact:
    """Set the given contact fields, with the admin's validation (the model's validators and
    ``clean``: phone numbers stored as E.164), and save only those (and ``updated_at``), so a
    field the bot changed meanwhile (a /stop) keeps its new value. A new Telegram chat clears
    ``telegram_blocked``: the block was the old chat's. Raises ``ValidationError`` with a
    message per field."""
    unknown = set(changes) - set(CONTACT_FIELDS)
    if unknown:
        raise ValidationError({name: _("This field can't be changed.") for name in sorted(unknown)})
    chat = contact.telegram_chat_id
    for name, value in changes.items():
        setattr(contact, name, value)
    contact.full_clean(exclude=["user"])
    saved = [*changes, "updated_at"]
    if "telegram_chat_id" in changes and contact.telegram_chat_id != chat:
        contact.telegram_blocked = False
        saved.append("telegram_blocked")
    if contact.pk is None:  # a user created before contacts existed
        contact.pk = UserContact.objects.get_or_create(user_id=contact.user_id)[0].pk
        contact._state.adding = False
    contact.save(update_fields=saved)
    return contact
