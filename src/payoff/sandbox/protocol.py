"""The fork server's protocol on its stdin/stdout: 4-byte big-endian length + pickle, request
then reply; a request's stdin bytes follow its pickle raw (``stdin_size`` of them). Standard
library only (the server runs as a lean `python -I -S`)."""

from __future__ import annotations

import os
import pickle
import socket
import struct
from typing import Any


def read_message(stream: Any) -> Any:
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack(">I", header)
    return pickle.loads(stream.read(size))


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = os.read(fd, remaining)
        if not chunk:
            raise EOFError("the client closed the pipe")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_request(fd: int) -> Any:
    """A request from the raw protocol fd (unbuffered: the stdin bytes after it stay in the pipe)."""
    header = os.read(fd, 4)
    if not header:
        return None
    header += _read_exactly(fd, 4 - len(header)) if len(header) < 4 else b""
    (size,) = struct.unpack(">I", header)
    return pickle.loads(_read_exactly(fd, size))


def copy_stdin(source_fd: int, target_fd: int, size: int) -> None:
    """Move `size` bytes from the protocol pipe to the run's stdin file inside the kernel."""
    while size:
        try:
            moved = os.splice(source_fd, target_fd, size)
        except (AttributeError, OSError):  # no splice here: the bytes pass through memory
            moved = os.write(target_fd, os.read(source_fd, min(size, 1 << 20)))
        if not moved:
            raise EOFError("the client closed the pipe mid-request")
        size -= moved


def write_stdin(target_fd: int, source_fd: int | None, size: int, data: bytes) -> None:
    """A run's stdin bytes into `target_fd`: the `size` still in the protocol pipe `source_fd`
    (moved by the kernel), then `data` (bytes a caller in this process passed along)."""
    if source_fd is not None:
        copy_stdin(source_fd, target_fd, size)
    os.write(target_fd, data)


def receive_fds(control: socket.socket, size: int, most: int) -> tuple[bytes, list[int]]:
    """One message and the descriptors that came with it on a SOCK_SEQPACKET socket between the
    server and a process of its own (the dormant copy, the resident judge); (b"", []) once the
    server has closed its end."""
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, size, most)
            return message, fds
        except InterruptedError:
            continue
        except OSError:
            return b"", []


def write_message(stream: Any, message: Any, flush: bool = True) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">I", len(data)) + data)
    if flush:
        stream.flush()
