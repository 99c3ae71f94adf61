"""Telegram's HTML shown in a browser (the compose page's preview): only Telegram's tags, with
only their attributes and safe links, come out as markup; everything else shows as text."""

from __future__ import annotations

from html.parser import HTMLParser

from django.utils.safestring import SafeString
from hypothesis import given
from hypothesis import strategies as st

from notifications.content import TELEGRAM_TAGS, href_allowed, telegram_preview_html


def test_telegram_formatting_is_shown_as_formatting():
    text = (
        '<b>Hi</b> <a href="https://example.com/?a=1&amp;b=2">link</a> 5 &lt; 6 &#33; '
        '<span class="tg-spoiler">s</span><blockquote expandable>q</blockquote>'
    )
    assert telegram_preview_html(text) == (
        '<b>Hi</b> <a href="https://example.com/?a=1&amp;b=2" target="_blank" '
        'rel="noopener noreferrer">link</a> 5 &lt; 6 ! '
        '<span class="tg-spoiler">s</span><blockquote expandable>q</blockquote>'
    )
    assert isinstance(telegram_preview_html(text), SafeString)


def test_anything_else_is_shown_as_text():
    text = (
        '<a href="javascript:alert(1)" href="https://example.com">x</a>'
        "<script>alert(1)</script><img src=x onerror=alert(1)>"
        '<b onclick="alert(1)">b</b><b/>&nbsp;'
    )
    assert telegram_preview_html(text) == (
        "&lt;a href=&quot;javascript:alert(1)&quot; href=&quot;https://example.com&quot;&gt;x"
        "&lt;/a&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
        "&lt;b onclick=&quot;alert(1)&quot;&gt;b&lt;/b&gt;&lt;b/&gt;&amp;nbsp;"
    )


def test_tags_are_balanced_whatever_the_text():
    assert telegram_preview_html("<b><i>x</b>") == "<b><i>x&lt;/b&gt;</i></b>"


class _Markup(HTMLParser):
    """The elements and attributes a browser would build from a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))

    def handle_comment(self, data: str) -> None:
        self.elements.append(("!--", []))

    def handle_decl(self, decl: str) -> None:
        self.elements.append(("!", []))

    def handle_pi(self, data: str) -> None:
        self.elements.append(("?", []))


PIECES = st.sampled_from(
    [
        "<",
        ">",
        "&",
        "/",
        '"',
        "'",
        "=",
        " ",
        "\t",
        "\n",
        "&#x09;",
        "&#106;",
        "&quot;",
        "&amp;",
        "&lt;",
        "&colon;",
        "<!--",
        "-->",
        "<!",
        "<?",
        "a",
        "b",
        "i",
        "span",
        "code",
        "pre",
        "script",
        "img",
        "tg-spoiler",
        "blockquote",
        "href",
        "class",
        "expandable",
        "onclick",
        "src",
        "style",
        "tg-spoiler",
        "language-x",
        "javascript:",
        "JavaScript:",
        "https://",
        "tg://",
        "mailto:",
        "alert(1)",
        "\x00",
        "\u200b",
        "</",
        "/>",
    ]
)


NAMES = st.sampled_from(["a", "b", "span", "code", "blockquote", "script", "img", "A", "B"])
ATTRIBUTE = st.tuples(
    st.sampled_from(["href", "HREF", "class", "expandable", "onclick", "src"]),
    st.sampled_from(['="{}"', "='{}'", "={}", ""]),
    st.lists(PIECES, max_size=6).map("".join),
).map(lambda parts: f" {parts[0]}{parts[1].format(parts[2])}")
TAG = st.tuples(st.sampled_from(["<", "</"]), NAMES, st.lists(ATTRIBUTE, max_size=3)).map(
    lambda parts: f"{parts[0]}{parts[1]}{''.join(parts[2])}>"
)


@given(st.lists(st.one_of(PIECES, TAG), max_size=30).map("".join))
def test_a_browser_finds_only_telegrams_tags_and_safe_links_in_a_preview(text):
    parser = _Markup()
    parser.feed(telegram_preview_html(text))
    parser.close()
    for tag, attrs in parser.elements:
        assert tag in TELEGRAM_TAGS
        names = [name for name, _value in attrs]
        assert len(names) == len(set(names))
        extra = {"target", "rel"} if tag == "a" else set()
        assert set(names) <= TELEGRAM_TAGS[tag] | extra
        if tag == "a":
            assert href_allowed(dict(attrs)["href"] or "")
