"""The `webhook` channel: a JSON POST per message (several people's messages to the channel's own URL in one post per
dispatch pass), with a Slack-compatible body (mrkdwn, mentions).

Settings: `url` (the default target; a recipient's own webhook URL overrides it), `token_env` (the NAME
of the environment variable holding a bearer token, sent to `url` only: a recipient's own URL is set by that
user and never gets it), `timeout` (seconds, 10), `blocks` (true: add Slack Block Kit blocks), `proxy` (an
http(s) proxy URL; proxy environment variables are not read).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pulsecheck.errors import InputError
from pulsecheck.notifications.channels.base import ChannelSettings, DeliveryError, scrub
from pulsecheck.notifications.message import Message, jsonable

_HEADER_LIMIT = 150  # Slack's limit for a header block's text
_SECTION_LIMIT = 3000  # Slack's limit for a section block's text
_HANDLE = re.compile(r"[A-Za-z0-9._-]{1,80}")
_LINK_LINE = re.compile(r"^([A-Z][\w ]*?):[ \t]+(https?://\S+)$", re.MULTILINE)


class WebhookChannel:
    """POSTs each message as JSON; HTTP 4xx is permanent except 408/429, 5xx and network errors retryable."""

    name = "webhook"

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        blocks: bool = True,
        proxy: str | None = None,
    ) -> None:
        self.url = url
        self._token = token
        self.timeout = timeout
        self.blocks = blocks
        self.proxy = proxy

    def __repr__(self) -> str:
        return f"WebhookChannel(url={_origin(self.url) if self.url else None!r})"

    def send(self, message: Message) -> None:
        """POST `message` to its recipient's webhook or the default URL; raise DeliveryError on failure."""
        self._post(self._target(message), self.payload(message), message.dedupe_key)

    def send_many(self, messages: list[Message]) -> None:
        """POST messages for several people to the channel's own URL as one body (one Slack message whose blocks
        follow each other, a divider between people), so a channel is not flooded with one post per person."""
        if len(messages) == 1 or not self.url:
            for message in messages:
                self.send(message)
            return
        bodies = [self.payload(message) for message in messages]
        body: dict[str, Any] = {"text": "\n\n".join(b["text"] for b in bodies)}
        if self.blocks:
            body["blocks"] = [block for b in bodies for block in [*b["blocks"], {"type": "divider"}]][:-1]
        body["messages"] = [{k: v for k, v in b.items() if k not in ("text", "blocks")} for b in bodies]
        key = hashlib.sha256("\n".join(m.dedupe_key for m in messages).encode()).hexdigest()
        self._post(self.url, body, f"batch:{key}")

    def _post(self, url: str, payload: dict[str, Any], idempotency_key: str) -> None:
        where = f"webhook {_origin(url)}"
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "pulsecheck",
            "Idempotency-Key": idempotency_key,
        }
        if self._token and url == self.url:
            # The token is for the configured endpoint: a per-user URL is set by that user and would receive it.
            headers["Authorization"] = f"Bearer {self._token}"
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with self._opener().open(request, timeout=self.timeout) as response:
                response.read(65536)
        except Exception as exc:
            raise self._error(where, exc, url) from exc

    def payload(self, message: Message) -> dict[str, Any]:
        """The JSON body: Slack's `text` and `blocks` (mrkdwn, the recipient mentioned when they have a chat
        handle), then kind, subject, recipient, context, dedupe_key."""
        handle = message.context.get("chat_handle")
        mention = f"<@{handle}> " if isinstance(handle, str) and _HANDLE.fullmatch(handle) else ""
        body: dict[str, Any] = {"text": f"{message.subject}\n\n{mention}{_escape(message.body.rstrip())}"}
        if self.blocks:
            body["blocks"] = [
                {"type": "header", "text": _plain(message.subject, _HEADER_LIMIT)},
                {"type": "section", "text": _mrkdwn(mention + _linked(_escape(message.body)), _SECTION_LIMIT)},
            ]
        body.update(
            kind=message.kind,
            subject=message.subject,
            recipient={"name": message.recipient_name, "email": message.recipient_email},
            context=jsonable(message.context),
            dedupe_key=message.dedupe_key,
        )
        return body

    def _target(self, message: Message) -> str:
        handle = message.recipient_webhook
        if handle:
            if not _is_http_url(handle):
                raise DeliveryError(
                    f"webhook: {message.recipient_name}'s webhook is not an http(s) URL", retryable=False
                )
            return handle
        if not self.url:
            raise DeliveryError(
                f"webhook: {message.recipient_name} has no webhook and the channel has no 'url'",
                retryable=False,
            )
        return self.url

    def _opener(self) -> urllib.request.OpenerDirector:
        proxies = {"http": self.proxy, "https": self.proxy} if self.proxy else {}
        return urllib.request.build_opener(urllib.request.ProxyHandler(proxies), _NoRedirect())

    def _error(self, where: str, exc: BaseException, url: str) -> DeliveryError:
        text, retryable, retry_after = _classify(exc)
        text = scrub(f"{where}: {text}", [self._token, url])
        return DeliveryError(text, retryable=retryable, retry_after=retry_after)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would turn the POST into a GET and drop the body, faking success."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


def _classify(exc: BaseException) -> tuple[str, bool, float | None]:
    """What went wrong, whether a later attempt may succeed, and the server's Retry-After (seconds)."""
    if isinstance(exc, urllib.error.HTTPError):
        code = exc.code
        detail = _snippet(exc)
        if 300 <= code < 400:
            return f"HTTP {code} redirect refused; set the final URL{detail}", False, None
        retryable = code in (408, 429) or code >= 500
        return f"HTTP {code} {exc.reason}{detail}", retryable, _retry_after(exc.headers.get("Retry-After"))
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted: {reason.verify_message or reason}", False, None
        if isinstance(reason, TimeoutError):
            return "timed out", True, None
        if isinstance(reason, OSError):
            return f"cannot connect: {reason.strerror or reason}", True, None
        return f"cannot send: {reason}", False, None
    if isinstance(exc, TimeoutError):
        return "timed out", True, None
    if isinstance(exc, http.client.HTTPException | OSError):
        return f"connection failed: {type(exc).__name__}: {exc}", True, None
    if isinstance(exc, ValueError):
        return f"bad request: {exc}", False, None
    return f"{type(exc).__name__}: {exc}", True, None


def _snippet(exc: Any) -> str:
    """The start of an error response body (Slack explains itself there: `invalid_payload`)."""
    try:
        text = exc.read(300).decode("utf-8", "replace")
    except Exception:
        return ""
    text = " ".join(text.split())
    return f": {text}" if text else ""


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date; the dispatcher's own backoff applies
        return None


def _escape(text: str) -> str:
    """Slack's control characters as entities, so that text cannot make mentions or links of its own."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _linked(text: str) -> str:
    """Lines `Label:  https://...` as Slack links `<url|Label>`; other lines as they are."""
    return _LINK_LINE.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", text)


def _mrkdwn(text: str, limit: int) -> dict[str, str]:
    """A Slack mrkdwn text object, cut to `limit` characters."""
    text = text.rstrip() or " "
    return {"type": "mrkdwn", "text": text if len(text) <= limit else text[: limit - 1] + "…"}


def _plain(text: str, limit: int) -> dict[str, str]:
    """A Slack plain_text object, cut to `limit` characters (Slack refuses longer ones)."""
    text = text.rstrip() or " "
    return {"type": "plain_text", "text": text if len(text) <= limit else text[: limit - 1] + "…"}


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _origin(url: str) -> str:
    """Scheme, host and port only: webhook paths (Slack's) and user info are secrets."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number; the request itself will say so
        port = ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def from_settings(settings: Mapping[str, Any], env: Mapping[str, str]) -> WebhookChannel:
    """A webhook channel from its settings; the token is read from `env[settings['token_env']]`."""
    reader = ChannelSettings("webhook", settings, ["url", "token_env", "timeout", "blocks", "proxy"])
    url = reader.text("url")
    if url is not None and not _is_http_url(url):
        raise InputError("channel 'webhook': setting 'url' must be an http:// or https:// URL")
    proxy = reader.text("proxy")
    if proxy is not None and not _is_http_url(proxy):
        raise InputError("channel 'webhook': setting 'proxy' must be an http:// or https:// URL")
    return WebhookChannel(
        url,
        token=reader.secret("token_env", env),
        timeout=reader.seconds("timeout", 10.0),
        blocks=reader.flag("blocks", True),
        proxy=proxy,
    )
