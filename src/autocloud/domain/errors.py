"""The project's own errors.

Adapters translate library exceptions into these, so services and entry points never
depend on a driver's exception types. Each error carries a message that tells the user
what to do, and the API maps each class to an HTTP status and an RFC 9457 problem type.
"""


class AutocloudError(Exception):
    """Base of every error the platform raises on purpose."""


class InvalidInput(AutocloudError):
    """A value from outside (API call, CLI flag, file, vehicle) is not acceptable."""


class InvalidVin(InvalidInput):
    """A VIN is malformed: wrong length, forbidden letters or a failed check digit."""


class UnknownSignal(InvalidInput):
    """A signal path is neither in the catalog nor a leaf of the configured VSS release."""


class NotFound(AutocloudError):
    """The thing asked for does not exist, or is outside the caller's tenant."""


class Conflict(AutocloudError):
    """The thing to create exists already, or the change clashes with current state."""


class Refused(Conflict):
    """A request refused by a rule (a safety interlock...); `reason` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.problem_fields = {"reason": reason}


class RateLimited(AutocloudError):
    """Too many requests in a short time; retry after `retry_after_s` seconds."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.problem_fields = {"retry_after_s": round(retry_after_s, 1)}


class Unauthorized(AutocloudError):
    """No credential, or one that is unknown, revoked or expired."""


class Forbidden(AutocloudError):
    """A valid credential whose role does not allow the action."""


class StoreUnavailable(AutocloudError):
    """A database or broker could not be reached or refused the operation."""


class DurabilityLost(AutocloudError):
    """The disk refused to make committed data durable (a failed fsync). Not retried: after
    such a failure the kernel may have dropped the data, so a later sync proves nothing."""


class ConfigurationError(AutocloudError):
    """Settings are missing or contradict each other; raised at start-up."""
