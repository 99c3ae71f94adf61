"""Telegram invite tokens, and the masked link a stored message carries instead of one.

A token is 43 characters of ``A–Z a–z 0–9 _ -``: an HMAC-SHA256, keyed with SECRET_KEY, of a
random nonce kept in the link's row. The database keeps the nonce and the token's SHA-256,
never the token. A notification that carries an invite stores its text with ``MASK`` where
the token goes; the live token is put in only in memory, when the message is sent
(``fill``), so neither the admin, the API nor a copy of the database shows a live link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.conf import settings

# A token's length: 32 bytes of HMAC in URL-safe base64, unpadded.
TOKEN_LENGTH = 43
# Stands for the token in a stored invite, shown as is by the admin and the API: as long as
# a token, and in the GSM alphabet, so the stored text counts the SMS segments the sent one
# takes.
MASK = "*" * TOKEN_LENGTH


def token_for(nonce: str) -> str:
    """The live token of the link whose row keeps ``nonce``."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"telegram-link:{nonce}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def fill(text: str, nonce: str) -> str:
    """``text`` with its masked token replaced by the live one of the link keeping ``nonce``
    (unchanged when the SECRET_KEY changed since: the link would not work)."""
    return text.replace(f"start={MASK}", f"start={token_for(nonce)}")
