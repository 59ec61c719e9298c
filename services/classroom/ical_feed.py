"""An iCalendar feed fetched by its URL (the web page's "import from an address"): the text the
session import then parses with its usual checks.

The API process makes the request, so it is bounded: http(s) only, a timeout, at most
``max_bytes`` read (the import's own size limit), a few redirects. Each failure says in words
what went wrong with the address (unreachable, no answer in time, an HTTP error, too large,
not a calendar), without quoting the server's answer: a teacher could name an address only
the API reaches, and learns no more of it than whether it serves a calendar.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from services.common.exceptions import Invalid

MAX_REDIRECTS = 5
CALENDAR_TYPES = "text/calendar, text/plain;q=0.5, */*;q=0.1"


def fetch_feed(url: str, *, max_bytes: int, timeout_s: float) -> str:
    """The text at ``url``, or Invalid with the reason it could not be had."""
    address = url.strip()
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("The calendar's address must be an http:// or https:// URL.")
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=True,
                          max_redirects=MAX_REDIRECTS) as client, client.stream(
                "GET", address, headers={"Accept": CALENDAR_TYPES}) as response:
            if response.status_code >= 400:
                raise Invalid(f"The calendar at {address} could not be fetched: the server "
                              f"answered HTTP {response.status_code} "
                              f"{response.reason_phrase}.".replace(" .", "."))
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise Invalid(f"The calendar at {address} is too large: more than "
                                  f"{max_bytes} bytes.")
            encoding = response.charset_encoding or "utf-8"
    except httpx.TimeoutException:
        raise Invalid(f"The calendar at {address} did not answer within {timeout_s:g} s."
                      ) from None
    except httpx.TooManyRedirects:
        raise Invalid(f"The calendar at {address} redirects too many times.") from None
    except httpx.HTTPError as exc:
        raise Invalid(f"The calendar at {address} cannot be reached: "
                      f"{exc or type(exc).__name__}.") from None
    try:
        text = bytes(body).decode(encoding, errors="replace")
    except LookupError:  # a charset Python does not know: iCalendar's default
        text = bytes(body).decode("utf-8", errors="replace")
    if not text.lstrip("\ufeff \t\r\n").upper().startswith("BEGIN:VCALENDAR"):
        # Said without quoting the answer: the address may be any page the API can reach.
        raise Invalid(f"The address {address} does not give an iCalendar feed: its answer "
                      "does not begin with BEGIN:VCALENDAR (is it the address of a web page "
                      "rather than of the .ics feed?).")
    return text
