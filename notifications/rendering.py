"""Templates rendered per channel and language, checked when a notification is created.

A template's texts are Django templates run by a sandboxed engine of their own: no loaders
(no ``include`` or ``extends``), no ``load``, no ``debug``, no ``url``, no ``safe``; only
the tags and filters below. Values are escaped for each channel's format: HTML for Telegram
(``parse_mode=HTML``) and the email's HTML part, nothing for the email's plain text and SMS.

Every render of one text has limits (``MAX_RENDERED_LENGTH`` characters made in all, counting
each filter's result and each piece of output; ``MAX_LOOP_ITERATIONS`` turns of its loops; a
filter's width, precision or list no larger than it could make), checked before the large
value is made, so a template can't make the process allocate or loop without bound.

Variables: the recipient's fields (``USER_FIELDS``) plus a JSON context given at creation (its
keys win). Every variable a template names must be given, even inside ``{% if %}`` (give an
empty value for an optional one): a missing one is a ``ValidationError`` when the notification
is created, never a blank at send time.

Telegram: the rendered text must be valid for Telegram's HTML subset
(``content.TELEGRAM_TAGS``) and fit in one message (4,096 UTF-16 units), so the sender never
splits it and so never cuts a tag in two. A plain message (no template) is still split by the
sender as before. ``content.telegram_preview_html`` shows such a text in a browser safely.

Raises ``django.core.exceptions.ValidationError`` with a message naming the part, whatever a
filter or tag raised on the values given: never anything else.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Sized
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NoReturn

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Context, Engine, Library, TemplateSyntaxError, defaultfilters
from django.template import Template as DjangoTemplate
from django.template import defaulttags as default_tags
from django.template.base import FilterExpression, Lexer, Node, NodeList, Parser, Token
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.content import check_telegram_markup
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

# The limits of one render of one text. Far above what a message can carry (a Telegram
# message is 4,096 characters, NOTIFY_MESSAGE_MAX_LENGTH is 10,000 by default, mail clients
# clip an HTML part past about 100 KB), and far below what would hurt the process.
MAX_RENDERED_LENGTH = 1_000_000  # characters made in all: output, and every filter's result
MAX_LOOP_ITERATIONS = 10_000  # turns of all its {% for %} loops together, nested ones included
MAX_FLOAT_PRECISION = 100  # digits floatformat may be asked for
# Filters whose first argument is a width or a count of characters, words or digits.
WIDTH_FILTERS = frozenset(
    {
        "center",
        "get_digit",
        "ljust",
        "rjust",
        "truncatechars",
        "truncatechars_html",
        "truncatewords",
        "truncatewords_html",
        "urlizetrunc",
        "wordwrap",
    }
)
_NUMBER = re.compile(r"\d{1,18}")  # int() reads any digits; a long run is read in pieces


class SandboxLimitError(Exception):
    """A render went past one of the sandbox's limits; the message says which."""


@dataclass
class _Budget:
    """What one render has used so far. The first limit passed is kept: ``{% if %}`` swallows
    errors of its conditions, so the render raises it again at its end."""

    characters: int = 0
    iterations: int = 0
    exceeded: SandboxLimitError | None = None

    def charge_characters(self, count: int) -> None:
        self.characters += count
        if self.characters > MAX_RENDERED_LENGTH:
            _refuse_length()

    def charge_iterations(self, count: int) -> None:
        self.iterations += count
        if self.iterations > MAX_LOOP_ITERATIONS:
            _refuse(
                _("its loops run more than %(limit)s times in all; loop over less.")
                % {"limit": f"{MAX_LOOP_ITERATIONS:,}"}
            )


_budget: ContextVar[_Budget | None] = ContextVar("notifications_template_budget", default=None)


def _refuse(message: str) -> NoReturn:
    error = SandboxLimitError(message)
    budget = _budget.get()
    if budget is not None and budget.exceeded is None:
        budget.exceeded = error
    raise error


def _refuse_length() -> NoReturn:
    _refuse(
        _(
            "it makes more than %(limit)s characters once rendered (filters' results "
            "included); shorten it."
        )
        % {"limit": f"{MAX_RENDERED_LENGTH:,}"}
    )


def _integer(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _check_arguments(name: str, value: Any, args: tuple) -> None:
    """Refuses a filter's call that would make a value past the limits, before it is made."""

    def too_large(number: int, limit: int) -> NoReturn:
        _refuse(
            _("the filter “%(filter)s” was given %(number)s; at most %(limit)s is allowed.")
            % {"filter": name, "number": f"{number:,}", "limit": f"{limit:,}"}
        )

    if name in WIDTH_FILTERS and args:
        number = _integer(args[0])
        if number is not None and abs(number) > MAX_RENDERED_LENGTH:
            too_large(number, MAX_RENDERED_LENGTH)
    elif name in ("stringformat", "floatformat") and args:
        # every number in the format: its widths and precisions
        limit = MAX_RENDERED_LENGTH if name == "stringformat" else MAX_FLOAT_PRECISION
        for digits in _NUMBER.findall(str(args[0])):
            if int(digits) > limit:
                too_large(int(digits), limit)
    elif name == "make_list":  # a list of one string per character
        length = len(str(value))
        if length > MAX_LOOP_ITERATIONS:
            too_large(length, MAX_LOOP_ITERATIONS)
    elif name == "join" and args and isinstance(value, Sized):  # the separator, len - 1 times
        if len(str(args[0])) * max(len(value) - 1, 0) > MAX_RENDERED_LENGTH:
            _refuse_length()


def _limited(name: str, function: Callable) -> Callable:
    """``function`` (a filter) with its arguments checked and its result charged."""

    @functools.wraps(function)
    def limited(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_arguments(name, value, args)
        result = function(value, *args, **kwargs)
        budget = _budget.get()
        if budget is not None and isinstance(result, Sized):
            budget.charge_characters(len(result))
        return result

    return limited


class _CountedSequence:
    """A ``{% for %}`` loop's sequence: its length charged before the first turn."""

    def __init__(self, expression: FilterExpression) -> None:
        self.expression = expression

    def __str__(self) -> str:
        return str(self.expression)

    def resolve(self, context: Context, ignore_failures: bool = False) -> Any:
        values = self.expression.resolve(context, ignore_failures=ignore_failures)
        budget = _budget.get()
        if values is None or budget is None:
            return values
        if not isinstance(values, Sized):
            values = list(itertools.islice(values, MAX_LOOP_ITERATIONS + 1))
        budget.charge_iterations(len(values))
        return values


def _do_for(parser: Parser, token: Token) -> Node:
    node = default_tags.do_for(parser, token)
    node.sequence = _CountedSequence(node.sequence)
    return node


class _Metered(Node):
    """A node that makes output (text, a variable, a tag's value): what it makes is charged."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def __repr__(self) -> str:
        return f"<Metered {self.node!r}>"

    def render(self, context: Context) -> str:
        output = self.node.render_annotated(context)
        budget = _budget.get()
        if budget is not None:
            budget.charge_characters(len(output))
        return output


# Nodes that make nothing of their own: only what their children make, which is charged.
_UNMETERED = (
    default_tags.CommentNode,
    default_tags.ForNode,
    default_tags.IfChangedNode,
    default_tags.IfNode,
    default_tags.RegroupNode,
    default_tags.ResetCycleNode,
    default_tags.SpacelessNode,
    default_tags.WithNode,
)


class _SandboxParser(Parser):
    def extend_nodelist(self, nodelist: NodeList, node: Node, token: Token) -> None:
        super().extend_nodelist(nodelist, node, token)
        if not isinstance(node, _UNMETERED):
            nodelist[-1] = _Metered(node)


class SandboxTemplate(DjangoTemplate):
    """A template compiled with its output metered and its loops counted, rendered within
    the limits; raises ``SandboxLimitError`` past one."""

    def compile_nodelist(self) -> NodeList:
        parser = _SandboxParser(
            Lexer(self.source).tokenize(),
            self.engine.template_libraries,
            self.engine.template_builtins,
            self.origin,
        )
        nodelist = parser.parse()
        self.extra_data = parser.extra_data
        return nodelist

    def render(self, context: Context | None = None) -> SafeString:
        budget = _Budget()
        token = _budget.set(budget)
        try:
            text = super().render(context)
        finally:
            _budget.reset(token)
        if budget.exceeded is not None:
            raise budget.exceeded
        return text


# The engine's only builtin library (``Engine`` imports it by this module's path).
register = Library()
for _name in ALLOWED_TAGS:
    register.tag(_name, _do_for if _name == "for" else default_tags.register.tags[_name])
for _name, _function in defaultfilters.register.filters.items():
    if _name not in FORBIDDEN_FILTERS:
        register.filter(_name, _limited(_name, _function))


class SandboxEngine(Engine):
    default_builtins = ["notifications.rendering"]

    def from_string(self, template_code: str) -> SandboxTemplate:
        return SandboxTemplate(template_code, engine=self)


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
    "digest_text": TEXT_ENGINE,
}
PART_LABELS = {
    "telegram_text": gettext_lazy("Telegram text"),
    "email_subject": gettext_lazy("email subject"),
    "email_text": gettext_lazy("email text"),
    "email_html": gettext_lazy("email HTML"),
    "sms_text": gettext_lazy("SMS text"),
    "digest_text": gettext_lazy("digest text"),
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


def part_label(part: str, language: str = "") -> str:
    """How errors name a part: “Telegram text (en)”."""
    return f"{PART_LABELS[part]} ({language})" if language else str(PART_LABELS[part])


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def compile_part(source: str, part: str, language: str = "") -> DjangoTemplate:
    """``source`` compiled in the sandbox; raises ``ValidationError`` naming the part."""
    try:
        return PART_ENGINES[part].from_string(source)
    except TemplateSyntaxError as err:
        error = str(err)
    except Exception as err:  # noqa: BLE001 - e.g. RecursionError: tags nested too deep
        error = _describe(err)
    raise ValidationError(
        _("%(part)s: %(error)s") % {"part": part_label(part, language), "error": error},
        code="syntax",
    )


def run_part(compiled: DjangoTemplate, part: str, context: Context, language: str = "") -> str:
    """``compiled`` rendered with ``context`` within the sandbox's limits. Raises
    ``ValidationError`` naming the part for a limit passed and for whatever a filter or tag
    raised on these values (a string given to ``divisibleby``…): never anything else."""
    label = part_label(part, language)
    try:
        return compiled.render(context)
    except SandboxLimitError as err:
        raise ValidationError(
            _("%(part)s: %(error)s") % {"part": label, "error": err}, code="limit"
        ) from None
    except Exception as err:  # noqa: BLE001 - any filter or tag, on any values
        raise ValidationError(
            _("%(part)s could not be rendered: %(error)s")
            % {"part": label, "error": _describe(err)},
            code="render",
        ) from None


def render_part(
    compiled: DjangoTemplate, part: str, values: dict[str, Any], language: str = ""
) -> str:
    """``compiled`` rendered with ``values``; raises ``ValidationError`` naming every missing
    variable, a limit passed, or what failed."""
    missing = _Missing()
    context = _StrictContext(
        {key: _strict(value, key, missing) for key, value in values.items()},
        missing,
        autoescape=compiled.engine.autoescape,
    )
    text = run_part(compiled, part, context, language)
    if missing.names:
        raise ValidationError(
            _("%(part)s uses %(names)s, missing from the context.")
            % {"part": part_label(part, language), "names": ", ".join(missing.names)},
            code="missing_variable",
        )
    return text


# --- Telegram's HTML subset: the markup is checked by ``content``, the length here ----------


def utf16_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def validate_telegram_html(text: str) -> None:
    """Raises ``ValidationError`` unless ``text`` is valid for Telegram's ``parse_mode=HTML``
    (``content.check_telegram_markup``) and fits one message (4,096 UTF-16 units)."""
    length = utf16_length(text)
    if length > MAX_MESSAGE_LENGTH:
        problem = _(
            "it is %(length)s characters long once rendered; a formatted Telegram message "
            "is sent whole, so at most %(limit)s fit. Shorten it."
        ) % {"length": length, "limit": MAX_MESSAGE_LENGTH}
        raise ValidationError(
            _("Telegram text: %(problem)s") % {"problem": problem}, code="telegram_html"
        )
    check_telegram_markup(text)


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
                part: compile_part(source, part, language)
                for part, source in sources.items()
                if source
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
            part: render_part(compiled[part], part, values, language) if part in compiled else ""
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
                compiled = compile_part(source, part, language)
                _render_sample(compiled, part, language, template.example_context)
            except ValidationError as err:
                errors.setdefault(f"{part}_{language}", []).extend(err.messages)
        digest = template.digest_text(language)
        if digest:
            try:
                compiled = compile_part(digest, "digest_text", language)
                _render_sample(compiled, "digest_text", language, SAMPLE_DIGEST)
            except ValidationError as err:
                errors.setdefault(f"digest_text_{language}", []).extend(err.messages)
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


# What a digest text is checked with when its template is saved.
SAMPLE_DIGEST = {
    "count": 3,
    "items": [{"message": f"Comment {n}", "subject": f"Subject {n}"} for n in (1, 2, 3)],
}


def render_digest(template: Template, language: str, values: dict[str, Any]) -> str:
    """A template's digest text in ``language`` for ``values`` (``count``, ``items`` and the
    recipient's fields); raises ``ValidationError``."""
    compiled = compile_part(template.digest_text(language), "digest_text", language)
    return render_part(compiled, "digest_text", values, language).strip()


class _LenientContext(Context):
    """A context that answers every unknown top-level name with a sample value."""

    def __getitem__(self, key):
        try:
            return super().__getitem__(key)
        except KeyError:
            return "x"

    def __contains__(self, key) -> bool:
        return True


def _render_sample(compiled: DjangoTemplate, part: str, language: str, example: Any) -> None:
    values = {**SAMPLE_USER, **(example if isinstance(example, dict) else {})}
    context = _LenientContext(values, autoescape=compiled.engine.autoescape)
    text = run_part(compiled, part, context, language)
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
