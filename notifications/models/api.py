"""The HTTP API's clients: their keys, and the idempotency keys they sent."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ApiKey(models.Model):
    """One client application's key to the HTTP API, stored as a salted hash.

    The key itself (``nsk_`` + ``prefix`` + a secret of 256 random bits) is shown once, when
    it is made (``notifications.api_keys``); ``prefix`` finds the row and names the key in
    lists and logs.
    """

    class Scope(models.TextChoices):
        READ = "read", _("Read only")
        WRITE = "write", _("Read and write")

    name = models.CharField(
        _("name"), max_length=100, help_text=_("Which application uses this key.")
    )
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    salt = models.CharField(_("salt"), max_length=32, editable=False)
    key_hash = models.CharField(_("key hash"), max_length=64, editable=False)
    scope = models.CharField(_("scope"), max_length=8, choices=Scope, default=Scope.WRITE)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(
        _("last used"), null=True, blank=True, help_text=_("Updated at most once a minute.")
    )
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} (nsk_{self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiIdempotencyKey(models.Model):
    """An ``Idempotency-Key`` an API client sent, with what it asked and what it got.

    ``client`` names the caller (``key:<ApiKey prefix>`` or ``user:<user id>``): keys of
    different clients never meet. ``fingerprint`` is a hash of the method, path and body; the
    same key with another fingerprint is refused. Kept at least
    ``NOTIFY_API_IDEMPOTENCY_HOURS`` (pruned hourly by ``tasks.prune_idempotency_keys``).
    """

    client = models.CharField(_("client"), max_length=40)
    key = models.CharField(_("key"), max_length=255)
    fingerprint = models.CharField(_("fingerprint"), max_length=64)
    status_code = models.PositiveSmallIntegerField(_("status code"), null=True)
    response = models.JSONField(_("response"), null=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("API idempotency key")
        verbose_name_plural = _("API idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="api_idempotency_client_key"),
        ]

    def __str__(self) -> str:
        return f"{self.client}: {self.key}"
