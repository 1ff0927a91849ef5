"""Keep secrets out of every string that leaves the process.

`requests` and `urllib3` put whole URLs, query string and so `appid` included,
into exception messages and debug logs; everything that may carry such text
goes through `redact` before it is logged or shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SECRET_PLACEHOLDER = "<secret>"  # noqa: S105 - the mask, not a secret

# Query parameters that carry a credential in the upstreams we talk to.
_SECRET_PARAMETER = re.compile(r"(?i)\b(appid|api_?key|apikey|key|token)=[^&\s'\"]*")


# Masking a one- or two-letter "secret" wherever it occurs would garble every
# line and protect nothing; credential fields are masked by name regardless.
MIN_SECRET_LENGTH = 6
_MASKED = rf"\1={SECRET_PLACEHOLDER}"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every known secret, and every credential-bearing query value, in `text`."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, SECRET_PLACEHOLDER)
    return _SECRET_PARAMETER.sub(_MASKED, text)
