"""The harness's wire format: tagged JSON that decodes to builtin data only, length-prefixed on
a socket. `from_wire` is the judge's side of the boundary and trusts nothing it is given.
Standard library only: it also runs where payoff is not importable (the lean fork server,
bubblewrap)."""

from __future__ import annotations

import json
import socket
import struct
from decimal import Decimal
from fractions import Fraction
from typing import Any

MAX_MESSAGE = 32 << 20


def to_wire(value: Any, make_handle: Any) -> Any:
    """A JSON-able tree for `value`: plain data natively, other types under a one-key tag.
    Objects that are not data become ``{"~h": [id, type name]}`` through `make_handle`
    (None: refuse them)."""
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is int or kind is float:
        return value
    if kind is list:
        return [to_wire(item, make_handle) for item in value]
    if kind is tuple:
        return {"~t": [to_wire(item, make_handle) for item in value]}
    if kind is dict:
        return {"~d": [[to_wire(k, make_handle), to_wire(v, make_handle)] for k, v in value.items()]}
    if kind is set or kind is frozenset:
        return {"~s" if kind is set else "~f": [to_wire(item, make_handle) for item in value]}
    if kind is complex:
        return {"~c": [value.real, value.imag]}
    if kind is bytes or kind is bytearray:
        return {"~b" if kind is bytes else "~y": value.hex()}
    if kind is range:
        return {"~r": [value.start, value.stop, value.step]}
    if kind is Fraction:
        return {"~q": [value.numerator, value.denominator]}
    if kind is Decimal:
        return {"~D": str(value)}
    # Subclasses of builtin data (IntEnum, namedtuple, OrderedDict, Counter ...) travel as their
    # base type, read through the base type's own methods.
    for base, convert in _BASES:
        if isinstance(value, base):
            return to_wire(convert(value), make_handle)
    if make_handle is None:
        raise TypeError(f"a {kind.__name__} cannot be sent to the program (plain data only)")
    return {"~h": [make_handle(value), kind.__name__]}


_BASES = (
    (bool, bool), (int, int.__int__), (float, float.__float__), (str, str.__str__),
    (tuple, lambda v: tuple(tuple.__iter__(v))), (list, lambda v: list(list.__iter__(v))),
    (dict, lambda v: dict(dict.items(v))), (frozenset, lambda v: frozenset(frozenset.__iter__(v))),
    (set, lambda v: set(set.__iter__(v))), (bytes, bytes), (bytearray, bytes),
)


def from_wire(node: Any, resolve_handle: Any) -> Any:
    """Rebuild a tree made by `to_wire` from builtin types only; anything else is refused.
    This is the judge's side of the boundary: it trusts nothing in `node`."""
    kind = type(node)
    if node is None or kind is bool or kind is str or kind is int or kind is float:
        return node
    if kind is list:
        return [from_wire(item, resolve_handle) for item in node]
    if kind is not dict or len(node) != 1:
        raise ValueError("malformed value from the program")
    ((tag, payload),) = node.items()
    if tag == "~t":
        return tuple(from_wire(item, resolve_handle) for item in _list(payload))
    if tag == "~d":
        return {from_wire(k, resolve_handle): from_wire(v, resolve_handle) for k, v in (pair(p) for p in _list(payload))}
    if tag == "~s":
        return {from_wire(item, resolve_handle) for item in _list(payload)}
    if tag == "~f":
        return frozenset(from_wire(item, resolve_handle) for item in _list(payload))
    if tag == "~c":
        real, imag = pair(payload)
        return complex(_number(real), _number(imag))
    if tag in ("~b", "~y"):
        data = bytes.fromhex(text(payload))
        return data if tag == "~b" else bytearray(data)
    if tag == "~r":
        return range(*(_integer(x) for x in _list(payload)))
    if tag == "~q":
        numerator, denominator = pair(payload)
        return Fraction(_integer(numerator), _integer(denominator))
    if tag == "~D":
        return Decimal(text(payload))
    if tag == "~h":
        handle, type_name = pair(payload)
        return resolve_handle(_integer(handle), text(type_name))
    raise ValueError(f"unknown tag {tag!r} from the program")


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise ValueError("malformed value from the program")
    return value


def pair(value: Any) -> list[Any]:
    if type(value) is not list or len(value) != 2:
        raise ValueError("malformed value from the program")
    return value


def _integer(value: Any) -> int:
    if type(value) is not int:
        raise ValueError("malformed value from the program")
    return value


def _number(value: Any) -> float:
    if type(value) not in (int, float):
        raise ValueError("malformed value from the program")
    return float(value)


def text(value: Any) -> str:
    if type(value) is not str:
        raise ValueError("malformed value from the program")
    return value


def send(sock: socket.socket, message: Any) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def receive(sock: socket.socket) -> Any:
    header = _exactly(sock, 4)
    (size,) = struct.unpack(">I", header)
    if size > MAX_MESSAGE:
        raise ValueError(f"a message of {size} bytes from the program (limit {MAX_MESSAGE})")
    return json.loads(_exactly(sock, size))


def _exactly(sock: socket.socket, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("the program process ended")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
