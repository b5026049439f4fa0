"""Sharing JSON keys and short strings between many documents (sys.intern).

Big registries and big sources directories repeat the same keys and tags in every
document; one copy each keeps a 100,000-source run under 1 GiB.
"""

from __future__ import annotations

import sys
from typing import Any


def shared(value: Any) -> Any:
    """The same JSON-like value, its dict keys and strings of up to 16 characters interned."""
    if type(value) is dict:
        return {sys.intern(k): shared(v) for k, v in value.items()}
    if type(value) is list:
        return [shared(v) for v in value]
    if type(value) is str and len(value) <= 16:
        return sys.intern(value)
    return value
