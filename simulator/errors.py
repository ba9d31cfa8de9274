"""oned's error codes and messages (include/Request.h, src/rm/Request.cc `failure_message`)."""

from __future__ import annotations

AUTHENTICATION = 0x0100
AUTHORIZATION = 0x0200
NO_EXISTS = 0x0400
ACTION = 0x0800
RPC_API = 0x1000
INTERNAL = 0x2000
ALLOCATE = 0x4000
LOCKED = 0x8000
REPLICATION = 0x10000


class ApiError(Exception):
    """A failed call: `code` and the text after oned's "[method] " prefix."""

    def __init__(self, code: int, message: str = "", resp_id: int = -1):
        super().__init__(message)
        self.code = code
        self.message = message
        self.resp_id = resp_id

    @classmethod
    def no_such(cls, obname: str, oid: int) -> "ApiError":
        return cls(NO_EXISTS, f"Error getting {obname} [{oid}].", oid)

    @classmethod
    def unauthorized(cls, uid: int, obname: str) -> "ApiError":
        return cls(AUTHORIZATION, f"User [{uid}] not authorized to perform action on {obname}.")

    @classmethod
    def unauthenticated(cls) -> "ApiError":
        return cls(AUTHENTICATION, "User couldn't be authenticated, aborting call.")

    def full_message(self, method: str) -> str:
        return f"[{method}] {self.message}"
