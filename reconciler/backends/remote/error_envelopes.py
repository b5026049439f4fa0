"""The human part of an API's error body: each product wraps its messages differently."""

from __future__ import annotations

import json
from typing import Any


def envelope_message(body: Any) -> str:
    """The human part of an error body, for the envelopes these APIs use.

    FastAPI's `{"detail": str | [{loc, msg}]}` (Sources API, Streamkap, Airweave, Splendor),
    Airbyte's `{"message", "errors": [{field, message, error_code}]}`, and the common
    `{"error": str | {"message"}}`; anything else is shown as it came.
    """
    if isinstance(body, str):
        return body
    if not isinstance(body, dict):
        return json.dumps(body) if body is not None else ""
    if "detail" in body:
        detail = body["detail"]
        if isinstance(detail, list):
            return "; ".join(_fastapi_item(d) for d in detail)
        return "" if detail is None else str(detail)
    message = body.get("message")
    if isinstance(message, str):
        # The fields the errors name, with their own message where it adds to the main one.
        extra = [
            str(e["field"])
            if e.get("message") in (None, message)
            else f"{e['field']}: {e['message']}"
            for e in body.get("errors") or ()
            if isinstance(e, dict) and e.get("field") not in (None, "", "body")
        ]
        return message + (f" ({'; '.join(extra)})" if extra else "")
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or json.dumps(error))
    if isinstance(error, str):
        return error
    return json.dumps(body)


def _fastapi_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(p) for p in item.get("loc", ())[1:])
    return f"{where}: {item.get('msg', '')}"
