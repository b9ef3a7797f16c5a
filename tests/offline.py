"""``no_network()``: the tests that prove a path works offline (the embedded dataset, the
ImageNet preparation from local archives) run inside it."""

import contextlib
import socket


@contextlib.contextmanager
def no_network():
    """Any attempt to open a connection fails loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    saved = (socket.socket.connect, socket.create_connection, socket.getaddrinfo)
    socket.socket.connect, socket.create_connection, socket.getaddrinfo = refuse, refuse, refuse
    try:
        yield
    finally:
        socket.socket.connect, socket.create_connection, socket.getaddrinfo = saved
