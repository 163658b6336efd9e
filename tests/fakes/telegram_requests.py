"""How the Bot API reads a request: body formats, parameter types and error answers.

PTB sends parameters urlencoded (or multipart/form-data when it uploads files), every
value a string: objects and arrays JSON-encoded, numbers and booleans as text. The Bot
API reads each parameter by its documented type; so does `read_params`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, web

JsonDict = dict[str, Any]

# A non-file request body (urlencoded or JSON) larger than this is refused with 413.
FORM_BODY_LIMIT = 4_000_000
UPLOAD_CHUNK = 256 * 1024

# Parameter types: urlencoded and multipart bodies carry strings; the Bot API reads
# objects and arrays as JSON and numbers/booleans by the parameter's documented type.
JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "reply_parameters",
        "entities",
        "caption_entities",
        "allowed_updates",
        "commands",
        "scope",
        "link_preview_options",
        "media",
    }
)
INT_PARAMS = frozenset(
    {
        "message_id",
        "offset",
        "limit",
        "width",
        "height",
        "duration",
        "length",
        "reply_to_message_id",
        "cache_time",
        "message_thread_id",
        "start_timestamp",
    }
)
FLOAT_PARAMS = frozenset({"timeout"})
BOOL_PARAMS = frozenset(
    {
        "supports_streaming",
        "disable_notification",
        "protect_content",
        "show_alert",
        "has_spoiler",
        "allow_sending_without_reply",
        "drop_pending_updates",
        "disable_web_page_preview",
        "disable_content_type_detection",
        "show_caption_above_media",
        "allow_paid_broadcast",
    }
)


class BotApiError(Exception):
    """An error answer: HTTP status, description and optional ResponseParameters."""

    def __init__(self, status: int, description: str, parameters: JsonDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JsonDict:
        body: JsonDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(reason: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {reason}")


@dataclass(frozen=True)
class Upload:
    """One multipart file part as it arrived, before a method turns it into a FileRef."""

    file_name: str | None
    content_type: str | None
    content: bytes = field(repr=False)


def _coerce_param(name: str, value: Any) -> Any:
    """Reads a string parameter the way the Bot API reads that parameter's type."""
    if not isinstance(value, str):
        return value
    try:
        if name in JSON_PARAMS:
            return json.loads(value)
        if name in INT_PARAMS:
            return int(value)
        if name in FLOAT_PARAMS:
            return float(value)
    except ValueError:
        raise bad_request(f"can't parse {name}") from None
    if name in BOOL_PARAMS:
        return value.lower() in ("true", "1")
    if name in ("chat_id", "user_id") and re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


async def _read_multipart(request: web.Request, upload_limit: int) -> tuple[JsonDict, dict[str, Upload]]:
    fields: JsonDict = {}
    uploads: dict[str, Upload] = {}
    too_large = False
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.filename is None:
            fields[part.name] = await part.text()
            continue
        chunks: list[bytes] = []
        size = 0
        while chunk := await part.read_chunk(UPLOAD_CHUNK):
            size += len(chunk)
            if size > upload_limit:
                too_large = True  # keep reading so the client can finish and read our answer
                chunks.clear()
            else:
                chunks.append(chunk)
        if not too_large:
            uploads[part.name] = Upload(part.filename, part.headers.get("Content-Type"), b"".join(chunks))
    if too_large:
        raise BotApiError(413, "Request Entity Too Large")
    return fields, uploads


async def read_params(request: web.Request, upload_limit: int) -> JsonDict:
    """Decodes query string and body (JSON, urlencoded or multipart) into typed params.

    A multipart file part becomes an `Upload` under its field name; a parameter of the
    form "attach://<part>" is replaced by that part's Upload.
    """
    params: JsonDict = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.content_type == "multipart/form-data":
        fields, uploads = await _read_multipart(request, upload_limit)
        params.update(fields)
    elif request.can_read_body:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise BotApiError(413, "Request Entity Too Large") from None
        if request.content_type == "application/json" and body:
            try:
                decoded = json.loads(body)
            except ValueError:
                raise bad_request("can't parse JSON encoded request body") from None
            if not isinstance(decoded, dict):
                raise bad_request("JSON request body must be an object")
            params.update(decoded)
        elif body:
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    for name, value in list(params.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            attached = uploads.pop(value.removeprefix("attach://"), None)
            if attached is None:
                raise bad_request(f"file {value} for {name} not found in the request")
            params[name] = attached
        else:
            params[name] = _coerce_param(name, value)
    params.update(uploads)
    return params
