"""Templates rendered per channel and language, checked when a notification is created.

A template's texts are Django templates run by a sandboxed engine of their own: no loaders
(no ``include`` or ``extends``), no ``load``, no ``debug``, no ``url``, no ``safe``; only
the tags and filters below. Values are escaped for each channel's format: HTML for Telegram
(``parse_mode=HTML``) and the email's HTML part, nothing for the email's plain text and SMS.

Variables: the recipient's fields (``USER_FIELDS``) plus a JSON context given at creation (its
keys win). Every variable a template names must be given, even inside ``{% if %}`` (give an
empty value for an optional one): a missing one is a ``ValidationError`` when the notification
is created, never a blank at send time.

Telegram: the rendered text must be valid for Telegram's HTML subset (``TELEGRAM_TAGS``) and
fit in one message (4,096 UTF-16 units), so the sender never splits it and so never cuts a
tag in two. A plain message (no template) is still split by the sender as before.

Raises ``django.core.exceptions.ValidationError`` with a message naming the part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Context, Engine, Library, TemplateSyntaxError, defaultfilters
from django.template import Template as DjangoTemplate
from django.template.defaulttags import register as default_tags
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.models import LANGUAGE_CHOICES, Template, UserContact
from notifications.senders.base import DeliveryError
from notifications.senders.sms import segment_count
from notifications.senders.telegram import MAX_MESSAGE_LENGTH
from notifications.validators import validate_message, validate_subject

# --- the sandbox ------------------------------------------------------------------------------

ALLOWED_TAGS = (
    "comment",
    "cycle",
    "filter",
    "firstof",
    "for",
    "if",
    "ifchanged",
    "now",
    "regroup",
    "resetcycle",
    "spaceless",
    "templatetag",
    "verbatim",
    "widthratio",
    "with",
)
# Filters that would let a value skip escaping, or dump objects.
FORBIDDEN_FILTERS = {"safe", "safeseq", "pprint"}

# The engine's only builtin library (``Engine`` imports it by this module's path).
register = Library()
for _name in ALLOWED_TAGS:
    register.tag(_name, default_tags.tags[_name])
for _name, _function in defaultfilters.register.filters.items():
    if _name not in FORBIDDEN_FILTERS:
        register.filter(_name, _function)


class SandboxEngine(Engine):
    default_builtins = ["notifications.rendering"]


HTML_ENGINE = SandboxEngine(loaders=[], libraries={}, autoescape=True)
TEXT_ENGINE = SandboxEngine(loaders=[], libraries={}, autoescape=False)

# The recipient's fields every template may use.
USER_FIELDS = ("username", "first_name", "last_name", "full_name", "email")

# Which engine each part is rendered with, and its label in errors.
PART_ENGINES = {
    "telegram_text": HTML_ENGINE,
    "email_subject": TEXT_ENGINE,
    "email_text": TEXT_ENGINE,
    "email_html": HTML_ENGINE,
    "sms_text": TEXT_ENGINE,
}
PART_LABELS = {
    "telegram_text": gettext_lazy("Telegram text"),
    "email_subject": gettext_lazy("email subject"),
    "email_text": gettext_lazy("email text"),
    "email_html": gettext_lazy("email HTML"),
    "sms_text": gettext_lazy("SMS text"),
}


class _Missing:
    """Collects the names a render looked up and did not find."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self, name: str) -> None:
        if name not in self.names:
            self.names.append(name)


class _StrictDict(dict):
    """A JSON object of the context that remembers which keys were asked for and missing."""

    def __init__(self, data: dict, path: str, missing: _Missing) -> None:
        super().__init__(data)
        self._path = path
        self._missing = missing

    def __getitem__(self, key):
        try:
            return super().__getitem__(key)
        except KeyError:
            self._missing.add(f"{self._path}.{key}")
            raise


class _StrictList(list):
    def __init__(self, data: list, path: str, missing: _Missing) -> None:
        super().__init__(data)
        self._path = path
        self._missing = missing

    def __getitem__(self, index):
        try:
            return super().__getitem__(index)
        except IndexError:
            self._missing.add(f"{self._path}.{index}")
            raise


class _StrictContext(Context):
    """A template context that records every top-level name looked up and not found."""

    def __init__(self, values: dict[str, Any], missing: _Missing, **kwargs) -> None:
        super().__init__(values, **kwargs)
        self._missing = missing  # a leading _ : no template variable can name it

    def __getitem__(self, key):
        try:
            return super().__getitem__(key)
        except KeyError:
            self._missing.add(key)
            raise


def _strict(value: Any, path: str, missing: _Missing) -> Any:
    if isinstance(value, dict):
        return _StrictDict(
            {k: _strict(v, f"{path}.{k}", missing) for k, v in value.items()}, path, missing
        )
    if isinstance(value, list):
        return _StrictList(
            [_strict(v, f"{path}.{i}", missing) for i, v in enumerate(value)], path, missing
        )
    return value


def compile_part(source: str, part: str) -> DjangoTemplate:
    """``source`` compiled in the sandbox; raises ``ValidationError`` naming the part."""
    try:
        return PART_ENGINES[part].from_string(source)
    except TemplateSyntaxError as err:
        raise ValidationError(
            _("%(part)s: %(error)s") % {"part": PART_LABELS[part], "error": err}, code="syntax"
        ) from None


def render_part(compiled: DjangoTemplate, part: str, values: dict[str, Any]) -> str:
    """``compiled`` rendered with ``values``; raises ``ValidationError`` naming every missing
    variable."""
    missing = _Missing()
    context = _StrictContext(
        {key: _strict(value, key, missing) for key, value in values.items()},
        missing,
        autoescape=compiled.engine.autoescape,
    )
    try:
        text = compiled.render(context)
    except (AttributeError, TypeError, ValueError, KeyError, IndexError, ArithmeticError) as err:
        raise ValidationError(
            _("%(part)s could not be rendered: %(error)s")
            % {"part": PART_LABELS[part], "error": err},
            code="render",
        ) from None
    if missing.names:
        raise ValidationError(
            _("%(part)s uses %(names)s, missing from the context.")
            % {"part": PART_LABELS[part], "names": ", ".join(missing.names)},
            code="missing_variable",
        )
    return text


# --- Telegram's HTML subset -------------------------------------------------------------------

# tag -> the attributes it may carry
TELEGRAM_TAGS: dict[str, set[str]] = {
    "b": set(),
    "strong": set(),
    "i": set(),
    "em": set(),
    "u": set(),
    "ins": set(),
    "s": set(),
    "strike": set(),
    "del": set(),
    "span": {"class"},
    "tg-spoiler": set(),
    "a": {"href"},
    "code": {"class"},
    "pre": set(),
    "blockquote": {"expandable"},
}
TELEGRAM_ENTITIES = {"lt", "gt", "amp", "quot"}
_TOKEN = re.compile(
    r"<(?P<close>/?)(?P<tag>[A-Za-z][A-Za-z0-9-]*)(?P<attrs>(?:\s+[^\s=>/]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*)\s*(?P<self>/?)>"
    r"|&(?P<entity>#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]*);"
    r"|(?P<bare>[<>&])"
)
_ATTR = re.compile(r"([^\s=>/]+)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+))?")
_HREF_SCHEMES = ("http://", "https://", "tg://", "mailto:")


def utf16_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def validate_telegram_html(text: str) -> None:
    """Raises ``ValidationError`` unless ``text`` is valid for Telegram's ``parse_mode=HTML``:
    only its tags and attributes, each closed in order, and ``<``, ``>``, ``&`` escaped."""

    def refuse(message: str, **values: Any) -> ValidationError:
        return ValidationError(
            _("Telegram text: %(problem)s") % {"problem": message % values}, code="telegram_html"
        )

    allowed = ", ".join(f"<{name}>" for name in TELEGRAM_TAGS)
    stack: list[str] = []
    for match in _TOKEN.finditer(text):
        if match["bare"]:
            raise refuse(
                _("a bare “%(char)s” must be written as &lt;, &gt; or &amp;."), char=match["bare"]
            )
        if match["entity"]:
            name = match["entity"]
            if not name.startswith("#") and name not in TELEGRAM_ENTITIES:
                raise refuse(_("the entity &%(name)s; is not supported."), name=name)
            continue
        tag = match["tag"].lower()
        if tag not in TELEGRAM_TAGS:
            raise refuse(
                _("the tag <%(tag)s> is not allowed; Telegram allows %(allowed)s."),
                tag=tag,
                allowed=allowed,
            )
        if match["self"]:
            raise refuse(_("<%(tag)s/> must have a closing tag instead."), tag=tag)
        if match["close"]:
            if not stack or stack[-1] != tag:
                raise refuse(_("</%(tag)s> closes a tag that is not open."), tag=tag)
            stack.pop()
            continue
        attrs = {
            name.lower(): (value or "").strip("\"'")
            for name, value in _ATTR.findall(match["attrs"])
        }
        extra = set(attrs) - TELEGRAM_TAGS[tag]
        if extra:
            raise refuse(
                _("<%(tag)s> cannot have the attribute %(attr)s."), tag=tag, attr=sorted(extra)[0]
            )
        if tag == "a" and not attrs.get("href", "").startswith(_HREF_SCHEMES):
            raise refuse(
                _("a link needs an href starting with http://, https://, tg:// or mailto:.")
            )
        if tag == "span" and attrs.get("class") != "tg-spoiler":
            raise refuse(_('<span> is allowed only as <span class="tg-spoiler">.'))
        if tag == "code" and "class" in attrs and not attrs["class"].startswith("language-"):
            raise refuse(_('<code> may only have class="language-…".'))
        stack.append(tag)
    if stack:
        raise refuse(_("<%(tag)s> is never closed."), tag=stack[-1])
    length = utf16_length(text)
    if length > MAX_MESSAGE_LENGTH:
        raise refuse(
            _(
                "it is %(length)s characters long once rendered; a formatted Telegram message "
                "is sent whole, so at most %(limit)s fit. Shorten it."
            ),
            length=length,
            limit=MAX_MESSAGE_LENGTH,
        )


# --- rendering a template for one recipient -------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """What each channel sends, rendered for one recipient in one language."""

    language: str
    telegram_text: str
    email_subject: str
    email_text: str
    email_html: str
    sms_text: str

    def as_json(self, template_key: str = "") -> dict[str, Any]:
        """The form kept in ``Notification.rendered`` (read by ``notifications.content``)."""
        email = {"subject": self.email_subject, "text": self.email_text}
        if self.email_html:
            email["html"] = self.email_html
        return {
            "language": self.language,
            "template": template_key,
            "telegram": {"text": self.telegram_text, "parse_mode": "HTML"},
            "email": email,
            "sms": {"text": self.sms_text},
        }


def default_language() -> str:
    return settings.LANGUAGE_CODE.split("-")[0]


def user_values(user: Any, contact: UserContact | None = None) -> dict[str, str]:
    """The recipient's fields a template may use."""
    first = getattr(user, "first_name", "") or ""
    last = getattr(user, "last_name", "") or ""
    username = user.get_username() if hasattr(user, "get_username") else ""
    email = contact.effective_email if contact is not None else getattr(user, "email", "") or ""
    return {
        "username": username,
        "first_name": first,
        "last_name": last,
        "full_name": f"{first} {last}".strip() or username,
        "email": email,
    }


def validate_context(context: Any) -> dict[str, Any]:
    """The JSON context: an object whose keys are names a template can use."""
    if context is None or context == "":
        return {}
    if not isinstance(context, dict):
        raise ValidationError(
            {"context": _('The context must be a JSON object, e.g. {"start": "02:00"}.')}
        )
    bad = [key for key in context if not isinstance(key, str) or not key.isidentifier()]
    if bad:
        raise ValidationError(
            {
                "context": _("Context keys must be names (letters, digits, _), not %(keys)s.")
                % {"keys": ", ".join(map(repr, bad))}
            }
        )
    return context


class TemplateRenderer:
    """One template compiled once, rendered for many recipients.

    Renders are remembered by the values they depend on (the language and the user fields the
    template's texts mention), so a campaign renders once per distinct recipient only when
    its template names a recipient's field.
    """

    def __init__(self, template: Template, context: dict[str, Any] | None = None) -> None:
        self.template = template
        self.context = validate_context(context)
        self.languages = template.languages()
        if not self.languages:
            raise ValidationError(
                {
                    "template": _(
                        "The template “%(name)s” has no complete language version: fill in "
                        "the Telegram text, email subject, email text and SMS text of Russian or "
                        "English."
                    )
                    % {"name": template.name}
                }
            )
        self._compiled: dict[str, dict[str, DjangoTemplate]] = {}
        self._used_fields: dict[str, tuple[str, ...]] = {}
        for language in self.languages:
            sources = {part: template.part(part, language) for part in Template.PARTS}
            self._compiled[language] = {
                part: compile_part(source, part) for part, source in sources.items() if source
            }
            text = "\n".join(sources.values())
            self._used_fields[language] = tuple(
                name
                for name in USER_FIELDS
                if name not in self.context and re.search(rf"\b{name}\b", text)
            )
        self._memo: dict[tuple, Rendered] = {}

    def language_for(self, contact: UserContact | None) -> str:
        """The recipient's language if the template has it, else the service's, else the
        template's first."""
        wanted = (contact.language if contact is not None else "") or default_language()
        if wanted in self.languages:
            return wanted
        if default_language() in self.languages:
            return default_language()
        return self.languages[0]

    def render(self, user: Any, contact: UserContact | None = None) -> Rendered:
        """Every part for this recipient; raises ``ValidationError``."""
        language = self.language_for(contact)
        fields = user_values(user, contact)
        key = (language, *(fields[name] for name in self._used_fields[language]))
        rendered = self._memo.get(key)
        if rendered is None:
            rendered = self._render(language, {**fields, **self.context})
            if len(self._memo) < 10_000:
                self._memo[key] = rendered
        return rendered

    def _render(self, language: str, values: dict[str, Any]) -> Rendered:
        compiled = self._compiled[language]
        texts = {
            part: render_part(compiled[part], part, values) if part in compiled else ""
            for part in Template.PARTS
        }
        rendered = Rendered(
            language=language,
            telegram_text=texts["telegram_text"].strip(),
            email_subject=" ".join(texts["email_subject"].split()),
            email_text=texts["email_text"].strip(),
            email_html=texts["email_html"].strip(),
            sms_text=texts["sms_text"].strip(),
        )
        check_rendered(rendered)
        return rendered


def _label(part: str, err: ValidationError) -> ValidationError:
    return ValidationError(
        "; ".join(f"{PART_LABELS[part]}: {message}" for message in err.messages), code=err.code
    )


def check_rendered(rendered: Rendered) -> None:
    """Raises ``ValidationError`` unless every channel can carry what it got."""
    for part in ("telegram_text", "email_text", "sms_text"):
        text = getattr(rendered, part)
        try:
            validate_message(text)
        except ValidationError as err:
            raise _label(part, err) from None
    validate_telegram_html(rendered.telegram_text)
    try:
        validate_subject(rendered.email_subject)
    except ValidationError as err:
        raise _label("email_subject", err) from None
    if len(rendered.email_subject) > 200:
        raise ValidationError(
            _("email subject: %(length)s characters once rendered; at most 200 fit.")
            % {"length": len(rendered.email_subject)}
        )
    if "\x00" in rendered.email_html:
        raise _label("email_html", ValidationError(_("it contains a NUL character.")))
    try:
        segment_count(rendered.sms_text)
    except DeliveryError as err:
        raise _label("sms_text", ValidationError(str(err))) from None


def check_template(template: Template) -> None:
    """The checks made when a template is saved: every text compiles, and renders (for a
    sample recipient and the example context, other variables filled with a sample value)
    to what its channel can carry. Raises ``ValidationError`` keyed by field."""
    errors: dict[str, list[str]] = {}
    for language in (code for code, _label in LANGUAGE_CHOICES):
        parts = {part: template.part(part, language) for part in Template.PARTS}
        filled = [part for part in Template.REQUIRED_PARTS if parts[part].strip()]
        if filled and len(filled) < len(Template.REQUIRED_PARTS):
            for part in Template.REQUIRED_PARTS:
                if not parts[part].strip():
                    errors.setdefault(f"{part}_{language}", []).append(
                        _("Fill in every channel of this language, or none of them.")
                    )
        for part, source in parts.items():
            if not source:
                continue
            try:
                compiled = compile_part(source, part)
                _render_sample(compiled, part, template.example_context)
            except ValidationError as err:
                errors.setdefault(f"{part}_{language}", []).extend(err.messages)
    if not errors and not template.languages():
        errors["telegram_text_ru"] = [
            _("Write at least one language version (Russian or English) in full.")
        ]
    if errors:
        raise ValidationError(errors)


SAMPLE_USER = {
    "username": "ivan",
    "first_name": "Ivan",
    "last_name": "Petrov",
    "full_name": "Ivan Petrov",
    "email": "ivan@example.com",
}


class _LenientContext(Context):
    """A context that answers every unknown top-level name with a sample value."""

    def __getitem__(self, key):
        try:
            return super().__getitem__(key)
        except KeyError:
            return "x"

    def __contains__(self, key) -> bool:
        return True


def _render_sample(compiled: DjangoTemplate, part: str, example: Any) -> None:
    values = {**SAMPLE_USER, **(example if isinstance(example, dict) else {})}
    text = compiled.render(_LenientContext(values, autoescape=compiled.engine.autoescape))
    if part == "telegram_text":
        validate_telegram_html(text.strip())


# --- preview numbers ----------------------------------------------------------------------------


@dataclass
class SmsEstimate:
    characters: int
    segments: int
    price: Decimal | None = None
    currency: str = ""
    cost: Decimal | None = field(default=None)


def sms_estimate(text: str) -> SmsEstimate:
    """How many SMS ``text`` takes and, with ``NOTIFY_SMS_PRICE``, what one costs."""
    try:
        segments = segment_count(text)
    except DeliveryError:
        segments = 0
    price = settings.NOTIFY_SMS_PRICE
    return SmsEstimate(
        characters=len(text),
        segments=segments,
        price=price,
        currency=settings.NOTIFY_SMS_CURRENCY,
        cost=price * segments if price is not None else None,
    )
