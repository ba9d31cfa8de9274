"""One error hierarchy: what the caller did wrong, what may pass, what will not."""


class OneHAError(Exception):
    """Base of every error oneha raises on purpose."""


class BadInput(OneHAError):
    """The request or data is wrong: answered with a 4xx, never retried."""

    def __init__(self, error: str, detail: str = "", status: int = 400):
        super().__init__(f"{error}: {detail}" if detail else error)
        self.error = error
        self.detail = detail
        self.status = status


class Transient(OneHAError):
    """May succeed later (a network blip, Redis or OpenNebula briefly away): retry, bounded."""


class Permanent(OneHAError):
    """Will not succeed by retrying: record it and escalate to a human."""


class ConfigError(OneHAError):
    """The configuration is invalid; the message names the key and the fix."""
