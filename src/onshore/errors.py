"""The one exception tree of onshore.

Every error carries the HTTP status the API answers with and a stable machine ``code``;
messages quote the bad value (never personal data) and say what to do.

    OnshoreError (500)
    ├── ConfigError (500)            invalid onshore.toml / environment override
    ├── RulePackError (500)          a rule pack failed validation on load
    ├── InputError (400)             malformed request body or CLI argument
    │   ├── ClientDisconnectedError (400) the client went away mid-body (nobody reads the answer)
    │   ├── RequestTimeoutError (408)  the body did not arrive within its time limit
    │   ├── PayloadTooLargeError (413)
    │   ├── UnsupportedMediaTypeError (415)
    │   └── ValidationError (422)    well-formed but invalid records (carries per-record reasons)
    ├── AuthError (401)              missing, unknown or revoked token
    ├── ForbiddenError (403)         token valid, role or region does not allow this
    │   ├── TransferDeniedError (403)  the border gate denied every data class of an export request
    │   └── VehicleNotRegisteredError (403) a record names a vehicle the caller does not speak for
    ├── NotFoundError (404)
    ├── ConflictError (409)          already exists / already done
    │   └── AlreadyProcessedError (409) a bus worker committed this batch before (carries its stored answer)
    ├── ResidencyError (500)         a store was asked to hold a datum of another jurisdiction
    ├── StorageError (503)           a database or blob store failed; translated at the storage boundary;
    │   │                            nothing was committed: retry after Retry-After
    │   └── SchemaVersionError (503) a record store's schema is not the revision this onshore needs
    ├── KeyNotProvisionedError (503) a region key is missing from its key store; run `onshore keys provision`
    ├── RateLimitedError (429)       this client is over its request rate or in-flight cap; retry after Retry-After
    ├── BusyError (503)              too much work in flight; retry after the Retry-After seconds
    │   ├── WriteConflictError (503) a concurrent writer of the region won; the store retries the transaction
    │   └── BusUnavailableError (503) the message bus (NATS JetStream) cannot be reached or did not confirm
    ├── BatchFormatError (500)       a bus carried bytes that are no admitted batch of a version this onshore reads
    ├── BatchRefusedError (any)      a bus worker refused a batch; status and code are the worker's error's
    ├── LedgerSourceError (503)      an auditor's log source (server, bundle) cannot be read at all
    ├── CheckpointError (422)        a checkpoint note is malformed or badly signed
    ├── ProofError (422)             an inclusion or consistency proof does not verify
    └── LedgerIntegrityError (500)   the stored Merkle tree contradicts itself (edited outside onshore)
"""

from __future__ import annotations

from typing import Any


class OnshoreError(Exception):
    """Root of every onshore error."""

    status = 500
    code = "internal"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The one JSON error shape of the API: ``{"error": {"code", "message", "details"?}}``."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class ConfigError(OnshoreError):
    code = "config_invalid"


class RulePackError(OnshoreError):
    code = "rule_pack_invalid"


class InputError(OnshoreError):
    status = 400
    code = "bad_request"


class ClientDisconnectedError(InputError):
    code = "client_disconnected"


class RequestTimeoutError(InputError):
    status = 408
    code = "request_timeout"


class PayloadTooLargeError(InputError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(InputError):
    status = 415
    code = "unsupported_media_type"


class ValidationError(InputError):
    status = 422
    code = "validation_failed"


class AuthError(OnshoreError):
    status = 401
    code = "unauthenticated"


class ForbiddenError(OnshoreError):
    status = 403
    code = "forbidden"


class NotFoundError(OnshoreError):
    status = 404
    code = "not_found"


class ConflictError(OnshoreError):
    status = 409
    code = "conflict"


class ResidencyError(OnshoreError):
    code = "residency_violation"


class StorageError(OnshoreError):
    """A database or blob store failed (unreachable, its connection killed, its disk full, locked too long).

    Nothing of the request was committed, so the client sends it again after ``Retry-After`` seconds; records
    are de-duplicated by message id, so a resend never stores one twice.
    """

    status = 503
    code = "storage_unavailable"
    retry_after_s: int | None = 2


class SchemaVersionError(StorageError):
    """A record store is empty, behind or ahead of this onshore's migrations; the message names the command to run."""

    code = "schema_version"
    retry_after_s = None  # an operator must act first: retrying on a timer changes nothing


class KeyNotProvisionedError(OnshoreError):
    """A named region key (pseudonym key, KEK, ...) is not in the region's shared key store.

    Shared key stores never create keys on first use (two processes would make two different keys); the
    operator provisions them once with the command the message names.
    """

    status = 503
    code = "key_not_provisioned"


class RateLimitedError(OnshoreError):
    """One client (a vehicle) sends faster, or holds more requests open, than its fair share."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int = 1, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after_s = max(1, retry_after_s)


class BusyError(OnshoreError):
    """The server has as much work of this kind in flight as it takes; the client retries later."""

    status = 503
    code = "busy"
    retry_after_s = 1


class WriteConflictError(BusyError):
    """A concurrent transaction of the same region wrote first (a ledger index taken, a serialization failure,
    a deadlock). The record store runs the whole transaction again; a caller only sees this when every retry lost."""

    code = "write_conflict"


class AlreadyProcessedError(ConflictError):
    """A bus worker finds the batch it is committing already committed (a redelivered message, or two workers
    given the same message). The transaction rolls back; ``outcome`` is the answer stored with the first commit."""

    code = "batch_already_processed"

    def __init__(self, outcome: str) -> None:
        super().__init__("this batch was committed before; its stored answer is returned")
        self.outcome = outcome


class BusUnavailableError(BusyError):
    """The message bus (NATS JetStream) is unreachable, or did not confirm a publish in time. Nothing the caller
    sent was acknowledged; it retries after ``Retry-After`` seconds."""

    code = "bus_unavailable"
    retry_after_s = 5


class TransferDeniedError(ForbiddenError):
    """The gate denied every data class of a request (the API's answer; ``details`` holds the decision)."""

    code = "transfer_denied"


class VehicleNotRegisteredError(ForbiddenError):
    """A record names a vehicle the caller may not speak for: a VIN not registered to the gateway (or revoked),
    or another vehicle's VIN on a vehicle's token. The message names the record, never the VIN."""

    code = "vehicle_not_registered"


class BatchFormatError(OnshoreError):
    """Bytes taken off an ingest bus are not an admitted batch this onshore reads: garbage, a truncated message,
    or a batch written by an onshore of another batch version (gateways and workers of different releases)."""

    code = "batch_invalid"


class BatchRefusedError(OnshoreError):
    """A bus worker refused a batch (for example a value of the wrong shape, found by classify): the error it
    recorded on the batch's receipt, raised again where a caller waits for the outcome (``onshore ingest``)."""

    def __init__(self, status: int, code: str, message: str, *, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.status = status
        self.code = code


class LedgerSourceError(OnshoreError):
    """The log could not be read at all: server unreachable, token refused, region unknown, bundle unreadable."""

    status = 503
    code = "ledger_source_unavailable"


class CheckpointError(OnshoreError):
    """A checkpoint note is malformed, badly signed, or lacks a required signature."""

    status = 422
    code = "checkpoint_invalid"


class ProofError(OnshoreError):
    """An inclusion or consistency proof (or a hash fed to one) does not verify."""

    status = 422
    code = "proof_invalid"


class LedgerIntegrityError(OnshoreError):
    """The stored tree contradicts itself: rows were changed or removed outside onshore."""

    code = "ledger_integrity"
