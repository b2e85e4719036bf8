"""The voicebot exception tree.

Every error voicebot raises on purpose derives from :class:`VoicebotError`. Each carries the HTTP
status it maps to at the API boundary (``http_status``), a SIP status where one applies
(``sip_status``), and whether retrying the same operation later may help (``retryable``).
Boundaries (the HTTP API, the CLI, the SIP UAS) convert these into their wire form; nothing
below the boundary formats an error for a user.

    VoicebotError
    ├── ConfigError            a tenant or settings file is invalid (names the file and field)
    ├── InputError             a request or message is unusable (not text, not UTF-8, bad JSON)
    │   └── TooLargeError      longer than the configured limit
    ├── NotFoundError          an id that does not exist (conversation, handoff, customer...)
    ├── ConflictError          the operation does not fit the current state
    ├── ModelError             an offline model is missing, corrupt or fails to load
    ├── ProviderError          an external dependency failed (CRM REST, LLM, database)
    │   ├── ProviderTimeout    it did not answer in time (retryable)
    │   └── ProviderUnavailable it refused or is down (retryable)
    ├── PolicyError            an action is refused by policy (e.g. personal data without verification)
    ├── AuthenticationError    no valid session or API token (401)
    ├── PermissionDeniedError  the user's role does not allow it (403)
    └── RateLimitedError       too many attempts; ``retry_after`` seconds to wait (429)
"""

from __future__ import annotations


class VoicebotError(Exception):
    """Base of every error voicebot raises on purpose."""

    http_status: int = 500
    sip_status: int = 500
    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable


class ConfigError(VoicebotError):
    """A configuration file is invalid. The message names the file and the field."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None) -> None:
        where = ", ".join(p for p in (f"file {file}" if file else "", f"field {field}" if field else "") if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.file = file
        self.field = field


class InputError(VoicebotError):
    """The input is unusable; the caller can fix it and send again."""

    http_status = 422
    sip_status = 400


class TooLargeError(InputError):
    http_status = 413
    sip_status = 513


class NotFoundError(VoicebotError):
    http_status = 404
    sip_status = 481


class ConflictError(VoicebotError):
    http_status = 409
    sip_status = 491


class ModelError(VoicebotError):
    """An offline model is missing or corrupt: run `voicebot models install`."""

    http_status = 503
    sip_status = 503


class ProviderError(VoicebotError):
    http_status = 502
    sip_status = 502


class ProviderTimeout(ProviderError):
    http_status = 504
    sip_status = 504
    retryable = True


class ProviderUnavailable(ProviderError):
    http_status = 503
    sip_status = 503
    retryable = True


class PolicyError(VoicebotError):
    http_status = 403
    sip_status = 403


class AuthenticationError(VoicebotError):
    """No valid credentials: log in (console) or send ``Authorization: Bearer <token>`` (API)."""

    http_status = 401


class PermissionDeniedError(VoicebotError):
    """Authenticated, but the user's role does not allow this."""

    http_status = 403


class RateLimitedError(VoicebotError):
    """Too many attempts in a short time; try again after ``retry_after`` seconds."""

    http_status = 429
    retryable = True

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
