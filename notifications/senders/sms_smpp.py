"""SMS over SMPP 3.4 with ``smpplib``: connect, bind_transmitter, submit_sm per part, unbind.

Each send opens its own session and always closes its socket, also when connecting or
binding failed. Long or non-GSM text goes out as a concatenated message (UDH, UCS2 for
Cyrillic) cut by ``smpplib.gsm.make_parts``; every part waits for its ``submit_sm_resp``.

Classification (``classify_status``): ``ESME_RINVDSTADR`` (and the other "this address is
wrong" statuses) are permanent; ``ESME_RTHROTTLED`` is rate limiting (``retry_after``);
bind failures, ``ESME_RSYSERR``, other statuses, timeouts and connection errors are transient.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import smpplib.client
import smpplib.consts as c
import smpplib.exceptions
from django.conf import settings

from notifications.senders.base import DeliveryError, SendResult
from notifications.senders.sms import SmsTransport, daily_slot, phone_digits, sms_parts

if TYPE_CHECKING:
    from notifications.models import Notification, UserContact

logger = logging.getLogger(__name__)

# Seconds to wait before the SMS channel is tried again after ESME_RTHROTTLED.
THROTTLED_RETRY_AFTER = 5.0
PERMANENT_STATUSES = {
    c.SMPP_ESME_RINVDSTADR,  # invalid destination address
    c.SMPP_ESME_RINVDSTTON,
    c.SMPP_ESME_RINVDSTNPI,
}
BIND_STATUSES = {c.SMPP_ESME_RBINDFAIL, c.SMPP_ESME_RINVPASWD, c.SMPP_ESME_RINVSYSID}


def describe_status(status: int) -> str:
    return f"{c.DESCRIPTIONS.get(status, 'unknown status')} (0x{status:08X})"


def classify_status(status: int, command: str, server: str) -> DeliveryError:
    """The ``DeliveryError`` an SMPP error status in a response to ``command`` means."""
    detail = f"{server} answered {command} with {describe_status(status)}"
    if status == c.SMPP_ESME_RTHROTTLED:
        return DeliveryError(f"{detail}: throttled", retry_after=THROTTLED_RETRY_AFTER)
    if status in PERMANENT_STATUSES:
        return DeliveryError(detail, permanent=True)
    if status in BIND_STATUSES:
        return DeliveryError(f"configuration error: {detail}; check SMPP_SYSTEM_ID/SMPP_PASSWORD")
    return DeliveryError(detail)


def _source_address(source: str) -> dict:
    """TON/NPI for a numeric source (international number) or an alphanumeric sender name."""
    if source.lstrip("+").isdigit():
        return {
            "source_addr_ton": c.SMPP_TON_INTL,
            "source_addr_npi": c.SMPP_NPI_ISDN,
            "source_addr": source.lstrip("+"),
        }
    return {
        "source_addr_ton": c.SMPP_TON_ALNUM,
        "source_addr_npi": c.SMPP_NPI_UNK,
        "source_addr": source,
    }


class SmppSession:
    """One transmitter session: ``with SmppSession(...) as session: session.submit(...)``.

    Raises ``DeliveryError`` for every failure; the socket is closed on leaving, always.
    """

    def __init__(self, host: str, port: int, system_id: str, password: str, timeout: float):
        self.server = f"SMPP server {host}:{port}"
        self.system_id = system_id
        self.password = password
        self.client = smpplib.client.Client(
            host,
            port,
            timeout=timeout,
            logger_name="smpplib.client",  # one logger, not one per session
            allow_unknown_opt_params=True,
        )

    def __enter__(self) -> SmppSession:
        try:
            self.client.connect()
            response = self.client.bind_transmitter(
                system_id=self.system_id, password=self.password
            )
        except smpplib.exceptions.PDUError as err:
            self.close()
            status = err.args[1] if len(err.args) > 1 else c.SMPP_ESME_RBINDFAIL
            raise classify_status(status, "bind_transmitter", self.server) from err
        except (smpplib.exceptions.ConnectionError, OSError) as err:
            self.close()
            raise DeliveryError(f"{self.server} unreachable or did not answer the bind") from err
        except BaseException:
            self.close()
            raise
        if response.is_error():  # pragma: no cover - smpplib raises PDUError for these
            self.close()
            raise classify_status(response.status, "bind_transmitter", self.server)
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self.client.state in (c.SMPP_CLIENT_STATE_BOUND_TX,):
                self.client.unbind()
        except (smpplib.exceptions.PDUError, smpplib.exceptions.ConnectionError, OSError) as err:
            logger.info("%s: unbind failed (%s); closing anyway", self.server, err)
        finally:
            self.close()

    def close(self) -> None:
        """Close the socket, whatever state the session reached."""
        if self.client.state == c.SMPP_CLIENT_STATE_CLOSED:
            # connect() failed: the socket exists but was never open; smpplib would warn
            # that it is "disconnecting in the bound state".
            self.client.state = c.SMPP_CLIENT_STATE_OPEN
        self.client.disconnect()

    def _wait_for(self, sequence: int, command: str):
        """Read PDUs until the response to ``sequence``; answers enquire_link meanwhile."""
        while True:
            pdu = self.client.read_pdu()
            if pdu.command == "enquire_link":
                self.client._enquire_link_received(pdu)
                continue
            if pdu.sequence != sequence and pdu.command != "generic_nack":
                logger.debug("%s: ignoring %s while waiting for %s", self.server, pdu, command)
                continue
            if pdu.is_error():
                raise classify_status(pdu.status, command, self.server)
            return pdu

    def submit(self, destination: str, text: str, source: str) -> list[str]:
        """Send ``text`` as one or more submit_sm; returns the SMSC's message id of each part."""
        parts, data_coding, esm_class = sms_parts(text)
        ids = []
        try:
            for part in parts:
                pdu = self.client.send_message(
                    **_source_address(source),
                    dest_addr_ton=c.SMPP_TON_INTL,
                    dest_addr_npi=c.SMPP_NPI_ISDN,
                    destination_addr=destination,
                    short_message=part,
                    data_coding=data_coding,
                    esm_class=esm_class,
                    registered_delivery=0,
                )
                response = self._wait_for(pdu.sequence, "submit_sm")
                message_id = response.message_id or b""
                ids.append(
                    message_id.decode("ascii", "replace")
                    if isinstance(message_id, bytes)
                    else str(message_id)
                )
        except TimeoutError as err:
            raise DeliveryError(f"{self.server} did not answer submit_sm in time") from err
        except (smpplib.exceptions.ConnectionError, OSError) as err:
            raise DeliveryError(f"{self.server} closed the connection during submit_sm") from err
        except smpplib.exceptions.PDUError as err:
            raise DeliveryError(f"{self.server}: {err}") from err
        return ids


class SmppSender(SmsTransport):
    transport = "sms_smpp"

    def is_configured(self) -> bool:
        return bool(settings.SMPP_HOST and settings.SMPP_SYSTEM_ID)

    def session(self) -> SmppSession:
        return SmppSession(
            settings.SMPP_HOST,
            settings.SMPP_PORT,
            settings.SMPP_SYSTEM_ID,
            settings.SMPP_PASSWORD,
            settings.SMPP_TIMEOUT or settings.NOTIFY_HTTP_TIMEOUT,
        )

    def send(self, contact: UserContact, notification: Notification) -> SendResult:
        destination = phone_digits(self.phone(contact))
        source = settings.SMPP_SOURCE_ADDR or settings.SMSAERO_SIGN
        with daily_slot(), self.session() as session:
            ids = session.submit(destination, notification.message, source)
        return SendResult(provider_message_id=",".join(ids), segments=len(ids))

    def check(self) -> str:
        with self.session() as session:
            server = session.server
        return f"{server} accepts the bind as {settings.SMPP_SYSTEM_ID!r} (then unbound)"
