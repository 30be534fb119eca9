"""Why a message, or one reading of a batch, was refused.  Stored as the reject's tag."""

from __future__ import annotations

from typing import Final

BAD_TOPIC: Final = "bad_topic"
UNKNOWN_TOPIC: Final = "unknown_topic"
OVERSIZED: Final = "oversized"
MALFORMED_JSON: Final = "malformed_json"
INVALID_PAYLOAD: Final = "invalid_payload"
UNKNOWN_DEVICE: Final = "unknown_device"
INSTITUTION_MISMATCH: Final = "institution_mismatch"
KIND_MISMATCH: Final = "kind_mismatch"
BAD_TIMESTAMP: Final = "bad_timestamp"
BAD_VALUE: Final = "bad_value"
UNIT_MISMATCH: Final = "unit_mismatch"
CONFLICTING_READING: Final = "conflicting_reading"
STORE_REFUSED: Final = "store_refused"
BAD_FRAME: Final = "bad_frame"
BAD_CHECKSUM: Final = "bad_checksum"
ADDRESS_MISMATCH: Final = "address_mismatch"
METER_ERROR: Final = "meter_error"
UNSUPPORTED_DATA: Final = "unsupported_data"
BAD_SIGNATURE: Final = "bad_signature"  # an HTTP push whose signature or token is wrong (the secret never kept)
INTERNAL_ERROR: Final = "internal_error"  # handling the message raised: a bug of ours, the message kept whole
