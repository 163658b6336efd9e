"""Message text the way the Bot API sees it: entities, UTF-16 offsets, parse modes.

Telegram measures entity offsets and lengths in UTF-16 code units, marks every
`/command` in a user's text or caption as a `bot_command` entity (PTB's
CommandHandler only fires on such an entity at offset 0), and turns
`parse_mode` markup into plain text plus entities — refusing malformed markup
with 400 "can't parse entities". The parsers follow the rules documented at
https://core.telegram.org/bots/api#formatting-options (error texts modelled on
tdlib's); they cover what a bot writes, not every corner of tdlib.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

Entity = dict[str, object]

# "/cmd" or "/cmd@botname", not preceded by a word character or another slash.
BOT_COMMAND = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/@])")

MARKDOWN_V2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")

HTML_TAG_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",  # only with class="tg-spoiler"
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
HTML_NAMED_CHARACTERS = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'", "nbsp": "\u00a0"}
HTML_CHARACTER_REFERENCE = re.compile(r"&(#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|[a-zA-Z]{2,8});")
HTML_START_TAG = re.compile(
    r"<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>\"']+))?)*)\s*/?>"
)
HTML_ATTRIBUTE = re.compile(r"([a-zA-Z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>\"']+)))?")
HTML_END_TAG = re.compile(r"</([a-zA-Z][a-zA-Z0-9-]*)?\s*>")


class EntityParseError(ValueError):
    """Markup that Telegram refuses; str() is the part after "can't parse entities: "."""


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def bot_command_entities(text: str) -> list[Entity]:
    """The `bot_command` entities Telegram attaches to a user's text or caption."""
    return [
        {"type": "bot_command", "offset": utf16_length(text[: m.start()]), "length": utf16_length(m.group())}
        for m in BOT_COMMAND.finditer(text)
    ]


@dataclass
class _Builder:
    """Collects plain text and entities, tracking the UTF-16 position."""

    pieces: list[str] = field(default_factory=list)
    position: int = 0
    entities: list[Entity] = field(default_factory=list)

    def append(self, text: str) -> None:
        self.pieces.append(text)
        self.position += utf16_length(text)

    def add_entity(self, kind: str, start: int, **extra: object) -> None:
        if self.position > start:  # Telegram drops empty entities
            self.entities.append({"type": kind, "offset": start, "length": self.position - start, **extra})

    def result(self) -> tuple[str, list[Entity]]:
        entities = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))  # type: ignore[operator]
        return "".join(self.pieces), entities


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[Entity]]:
    """Apply a Bot API `parse_mode` ("HTML", "MarkdownV2", "Markdown"; case-insensitive)."""
    mode = (parse_mode or "").lower()
    if mode == "":
        return text, []
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    raise EntityParseError(f'Unsupported parse_mode "{parse_mode}"')


@dataclass
class _OpenTag:
    name: str
    start: int
    byte_offset: int
    attributes: dict[str, str]
    language: str | None = None


def _html_attributes(raw: str) -> dict[str, str]:
    return {
        m.group(1).lower(): html.unescape(next((g for g in m.groups()[1:] if g is not None), ""))
        for m in HTML_ATTRIBUTE.finditer(raw)
    }


def _decode_character_reference(match: re.Match[str]) -> str | None:
    name = match.group(1)
    if name.startswith("#x"):
        code = int(name[2:], 16)
    elif name.startswith("#"):
        code = int(name[1:])
    else:
        return HTML_NAMED_CHARACTERS.get(name.lower())
    return chr(code) if 0 < code <= 0x10FFFF else None


def parse_html(source: str) -> tuple[str, list[Entity]]:
    out = _Builder()
    stack: list[_OpenTag] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "&":
            match = HTML_CHARACTER_REFERENCE.match(source, i)
            decoded = _decode_character_reference(match) if match else None
            if match and decoded is not None:
                out.append(decoded)
                i = match.end()
            else:  # Telegram keeps an unknown "&" as text
                out.append("&")
                i += 1
        elif char == "<" and source.startswith("</", i):
            i = _close_html_tag(source, i, stack, out)
        elif char == "<":
            i = _open_html_tag(source, i, stack, out)
        else:
            out.append(char)
            i += 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return out.result()


def _open_html_tag(source: str, i: int, stack: list[_OpenTag], out: _Builder) -> int:
    match = HTML_START_TAG.match(source, i)
    if match is None:
        raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(source, i)}")
    name = match.group(1).lower()
    attributes = _html_attributes(match.group(2))
    if name not in HTML_TAG_ENTITY:
        raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {_byte_offset(source, i)}')
    if name == "span" and attributes.get("class") != "tg-spoiler":
        raise EntityParseError(
            f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(source, i)}'
        )
    stack.append(_OpenTag(name, out.position, _byte_offset(source, i), attributes))
    return match.end()


def _close_html_tag(source: str, i: int, stack: list[_OpenTag], out: _Builder) -> int:
    match = HTML_END_TAG.match(source, i)
    if match is None:
        raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(source, i)}")
    name = (match.group(1) or "").lower()
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(source, i)}")
    tag = stack.pop()
    if name and name != tag.name:
        raise EntityParseError(
            f"Unmatched end tag at byte offset {_byte_offset(source, i)}, "
            f'expected "</{tag.name}>", found "</{name}>"'
        )
    kind = HTML_TAG_ENTITY[tag.name]
    if kind == "code" and stack and stack[-1].name == "pre" and stack[-1].start == tag.start:
        # <pre><code class="language-x">…</code></pre> is one pre entity with a language
        language = tag.attributes.get("class", "")
        stack[-1].language = language.removeprefix("language-") if language.startswith("language-") else None
    elif kind == "text_link":
        out.add_entity(kind, tag.start, url=tag.attributes.get("href", ""))
    elif kind == "pre" and tag.language:
        out.add_entity(kind, tag.start, language=tag.language)
    elif kind == "blockquote" and "expandable" in tag.attributes:
        out.add_entity("expandable_blockquote", tag.start)
    elif kind == "custom_emoji":
        out.add_entity(kind, tag.start, custom_emoji_id=tag.attributes.get("emoji-id", ""))
    else:
        out.add_entity(kind, tag.start)
    return match.end()


@dataclass
class _OpenMarkdown:
    kind: str
    marker: str
    start: int
    byte_offset: int


MARKDOWN_V2_MARKERS = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}


def parse_markdown_v2(source: str) -> tuple[str, list[Entity]]:
    out = _Builder()
    stack: list[_OpenMarkdown] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "\\" and i + 1 < len(source) and ord(source[i + 1]) <= 126:
            out.append(source[i + 1])
            i += 2
            continue
        if char not in MARKDOWN_V2_RESERVED:
            out.append(char)
            i += 1
            continue
        if char == "`":
            i = _markdown_v2_code(source, i, out)
            continue
        if char == ">" and (i == 0 or source[i - 1] == "\n"):
            i = _markdown_v2_blockquote(source, i, out)
            continue
        marker = source[i : i + 2] if source[i : i + 2] in ("__", "||") else char
        if marker in MARKDOWN_V2_MARKERS:
            if stack and stack[-1].marker == marker:
                entity = stack.pop()
                out.add_entity(entity.kind, entity.start)
            else:
                stack.append(
                    _OpenMarkdown(MARKDOWN_V2_MARKERS[marker], marker, out.position, _byte_offset(source, i))
                )
            i += len(marker)
        elif char == "[":
            stack.append(_OpenMarkdown("text_link", "[", out.position, _byte_offset(source, i)))
            i += 1
        elif char == "]" and stack and stack[-1].marker == "[":
            entity = stack.pop()
            url, i = _markdown_url(source, i + 1, escapes=True)
            if url:
                out.add_entity("text_link", entity.start, url=url)
        else:
            raise EntityParseError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
    if stack:
        kind = stack[-1].kind.replace("_", " ").title().replace(" ", "")
        raise EntityParseError(f"Can't find end of {kind} entity at byte offset {stack[-1].byte_offset}")
    return out.result()


def _markdown_v2_code(source: str, i: int, out: _Builder) -> int:
    """`code` or ```pre```; inside them only ` and \\ are escaped."""
    is_pre = source.startswith("```", i)
    fence = "```" if is_pre else "`"
    j = i + len(fence)
    language = None
    if is_pre:
        newline = source.find("\n", j)
        closing = source.find("```", j)
        if newline != -1 and (closing == -1 or newline < closing):
            language = source[j:newline] or None
            j = newline + 1
    start = out.position
    while j < len(source):
        if source[j] == "\\" and j + 1 < len(source) and source[j + 1] in "`\\":
            out.append(source[j + 1])
            j += 2
        elif source.startswith(fence, j):
            extra = {"language": language} if language else {}
            out.add_entity("pre" if is_pre else "code", start, **extra)
            return j + len(fence)
        else:
            out.append(source[j])
            j += 1
    kind = "Pre" if is_pre else "Code"
    raise EntityParseError(f"Can't find end of {kind} entity at byte offset {_byte_offset(source, i)}")


def _markdown_v2_blockquote(source: str, i: int, out: _Builder) -> int:
    """Consecutive lines starting with ">" form one blockquote (entities inside it are dropped)."""
    start = out.position
    while i < len(source) and source[i] == ">" and (i == 0 or source[i - 1] == "\n"):
        end = source.find("\n", i)
        end = len(source) if end == -1 else end + 1
        line_text, _ = parse_markdown_v2(source[i + 1 : end])
        out.append(line_text)
        i = end
    out.add_entity("blockquote", start)
    return i


def _markdown_url(source: str, i: int, *, escapes: bool) -> tuple[str, int]:
    """Read "(url)" at i; returns ("", i) when no URL follows."""
    if i >= len(source) or source[i] != "(":
        return "", i
    url: list[str] = []
    j = i + 1
    while j < len(source) and source[j] != ")":
        if escapes and source[j] == "\\" and j + 1 < len(source):
            j += 1
        url.append(source[j])
        j += 1
    if j >= len(source):
        raise EntityParseError(f"Can't find end of a URL at byte offset {_byte_offset(source, i)}")
    return "".join(url), j + 1


MARKDOWN_MARKERS = {"*": "bold", "_": "italic"}


def parse_markdown(source: str) -> tuple[str, list[Entity]]:
    """Legacy Markdown: *bold*, _italic_, `code`, ```pre```, [text](url); no nesting."""
    out = _Builder()
    i = 0
    while i < len(source):
        char = source[i]
        if char == "\\" and i + 1 < len(source) and source[i + 1] in "_*`[":
            out.append(source[i + 1])
            i += 2
            continue
        if char not in "_*`[":
            out.append(char)
            i += 1
            continue
        fence = "```" if source.startswith("```", i) else "]" if char == "[" else char
        end = source.find(fence, i + (3 if fence == "```" else 1))
        if end == -1:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset {_byte_offset(source, i)}"
            )
        start = out.position
        if fence == "```":
            body = source[i + 3 : end]
            language, newline, code = body.partition("\n")
            out.append(code if newline and language and " " not in language else body)
            extra = {"language": language} if newline and language and " " not in language else {}
            out.add_entity("pre", start, **extra)
            i = end + 3
        elif char == "[":
            out.append(source[i + 1 : end])
            url, i = _markdown_url(source, end + 1, escapes=False)
            if url:
                out.add_entity("text_link", start, url=url)
        else:
            out.append(source[i + 1 : end])
            out.add_entity(MARKDOWN_MARKERS.get(char, "code"), start)
            i = end + 1
    return out.result()
