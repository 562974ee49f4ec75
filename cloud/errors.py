"""Errors of the cloud service.

Every error the service raises on purpose derives from :class:`CloudError` and
carries a stable ``code`` (what the HTTP layer puts in the JSON body), an HTTP
status and, where one input is at fault, the ``field`` that is.
"""

from __future__ import annotations


class CloudError(Exception):
    """Base of every error raised by the cloud service."""

    code = "cloud_error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class BadRequestError(CloudError, ValueError):
    """Input that is well-formed but cannot be accepted (bad cursor, bad range)."""

    code = "bad_request"
    status = 400


class InvalidRequestError(CloudError, ValueError):
    """A request parameter that is not acceptable as given (HTTP 422)."""

    code = "invalid_value"
    status = 422


class InvalidEventError(CloudError, ValueError):
    """An event or batch refused as a whole: wrong device, time out of range."""

    code = "invalid_event"
    status = 422


class PayloadTooLargeError(CloudError, ValueError):
    """A request body past the compressed or decompressed size bound."""

    code = "payload_too_large"
    status = 413


class UnsupportedEncodingError(CloudError, ValueError):
    """A request body in a Content-Encoding other than gzip or identity (HTTP 415)."""

    code = "unsupported_encoding"
    status = 415


class AuthenticationError(CloudError, PermissionError):
    """No API key, or one that is unknown, malformed or revoked (HTTP 401)."""

    code = "unauthenticated"
    status = 401


class ForbiddenError(CloudError, PermissionError):
    """A valid key whose role or device does not allow the request (HTTP 403)."""

    code = "forbidden"
    status = 403


class NotFoundError(CloudError, LookupError):
    """A store, device, key or event that does not exist."""

    code = "not_found"
    status = 404


class ConflictError(CloudError, ValueError):
    """A resource that already exists under that id."""

    code = "conflict"
    status = 409


class GoneError(CloudError, LookupError):
    """Something that existed and can no longer be used (an expired or revoked code)."""

    code = "gone"
    status = 410


class RateLimitedError(CloudError, RuntimeError):
    """Too many requests for one key; ``retry_after`` says when to come back."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class StoreError(CloudError, RuntimeError):
    """The database cannot be reached or migrated."""

    code = "store_unavailable"
    status = 503
