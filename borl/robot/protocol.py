"""The policy server's wire format: msgpack maps with numpy arrays as typed buffers.

Never pickle: unpickling bytes from the network runs whatever code they name. Here an array crosses as
{"__ndarray__": dtype, "shape": [...], "data": raw bytes}; only booleans, integers, unsigned integers
and floats are accepted, and the buffer's length must match its dtype and shape.

Messages (each a map with "type"):
- server -> client, on connect: "spec" (observation keys and sizes, action size, control rate, run,
  iteration, checkpoint);
- client -> server: "reset" (optional "seed") starts an episode, answered by "ready"; "act" with "obs"
  (one flat float array, or a map key -> array in the spec's keys), answered by "action";
- server -> client: "error" with a one-line "message" for a bad message; the connection stays open.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from borl.errors import BorlError

ARRAY_TAG = "__ndarray__"
# Numeric kinds only: b(ool), i(nt), u(nsigned), f(loat).
_ALLOWED_KINDS = frozenset("biuf")


class ProtocolError(BorlError):
    """A message that does not follow the protocol; its text is what the peer is told."""


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _ALLOWED_KINDS:
            raise TypeError(f"cannot send an array of dtype {value.dtype}")
        array = np.ascontiguousarray(value)
        return {ARRAY_TAG: array.dtype.str, "shape": list(array.shape), "data": array.tobytes()}
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot send a value of type {type(value).__name__}")


def _decode(value: dict) -> Any:
    if ARRAY_TAG not in value:
        return value
    try:
        dtype = np.dtype(value[ARRAY_TAG])
        shape = tuple(int(n) for n in value["shape"])
        data = value["data"]
    except (TypeError, ValueError, KeyError) as error:
        raise ProtocolError(f"malformed array: {error}") from None
    if dtype.kind not in _ALLOWED_KINDS:
        raise ProtocolError(f"arrays of dtype {dtype} are not accepted (numeric dtypes only)")
    if not isinstance(data, bytes) or any(n < 0 for n in shape):
        raise ProtocolError("malformed array: data must be bytes and the shape non-negative")
    if len(data) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise ProtocolError(f"array data is {len(data)} bytes, which does not match {dtype} {list(shape)}")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def pack(message: dict[str, Any]) -> bytes:
    """One message as msgpack bytes."""
    return msgpack.packb(message, default=_encode, use_bin_type=True)


def unpack(data: bytes | str) -> dict[str, Any]:
    """A message from msgpack bytes; anything else, or a message without a "type", is a ProtocolError."""
    if isinstance(data, str):
        raise ProtocolError("text frames are not accepted: send msgpack as a binary frame")
    try:
        message = msgpack.unpackb(data, object_hook=_decode, raw=False, strict_map_key=True)
    except ProtocolError:
        raise
    except Exception as error:  # msgpack raises several unrelated types for bad bytes
        raise ProtocolError(f"malformed msgpack ({type(error).__name__})") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError('a message must be a map with a string "type"')
    return message


def error_message(text: str) -> bytes:
    return pack({"type": "error", "message": text})
