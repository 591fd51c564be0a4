"""A small Socket Mode server for tests: plain WebSocket (RFC 6455) on 127.0.0.1, stdlib only.

It greets each connection with Slack's `hello`, answers pings, pushes envelopes the way Slack does
(`{"envelope_id", "type": "interactive", "payload", "accepts_response_payload"}`), and records the
acks the app sends back. `apps.connections.open` on the Web API emulator hands out its URL.
"""
from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import uuid

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class SocketModeServer:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self.acks: list[dict] = []
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="socket-mode-server", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._listener.getsockname()[1]}/link/?ticket=test"

    def __enter__(self) -> "SocketModeServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._listener.close()
        with self._lock:
            for client in self._clients:
                client.close()

    def send_interactive(self, payload: dict) -> str:
        """Push one interactivity envelope to the connected app; its envelope id."""
        envelope_id = str(uuid.uuid4())
        self._send_all(json.dumps({"envelope_id": envelope_id, "type": "interactive", "payload": payload,
                                   "accepts_response_payload": payload.get("type") == "view_submission"}))
        return envelope_id

    def acked(self, envelope_id: str) -> dict | None:
        with self._lock:
            return next((a for a in self.acks if a.get("envelope_id") == envelope_id), None)

    # -- the connection ---------------------------------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if not _handshake(client):
            client.close()
            return
        with self._lock:
            self._clients.append(client)
        _send(client, TEXT, json.dumps({"type": "hello", "num_connections": 1,
                                        "debug_info": {"host": "local", "approximate_connection_time": 18060},
                                        "connection_info": {"app_id": "A0COUNTER"}}).encode())
        self.connected.set()
        self._read(client)

    def _read(self, client: socket.socket) -> None:
        while True:
            try:
                opcode, data = _receive(client)
            except (OSError, ConnectionError):
                return
            if opcode == PING:
                _send(client, PONG, data)
            elif opcode == TEXT:
                with self._lock:
                    self.acks.append(json.loads(data))
            elif opcode == CLOSE:
                _send(client, CLOSE, data[:2])
                return

    def _send_all(self, text: str) -> None:
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            _send(client, TEXT, text.encode())


def _handshake(client: socket.socket) -> bool:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = client.recv(4096)
        if not chunk:
            return False
        request += chunk
    headers = dict(line.split(": ", 1) for line in request.decode().split("\r\n")[1:] if ": " in line)
    key = headers.get("Sec-WebSocket-Key", "")
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    client.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
    return True


def _send(client: socket.socket, opcode: int, data: bytes) -> None:
    """A server frame: FIN, opcode, unmasked length and payload."""
    size = len(data)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    client.sendall(header + data)


def _receive(client: socket.socket) -> tuple[int, bytes]:
    """A client frame (always masked): its opcode and unmasked payload."""
    first, second = _exactly(client, 2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", _exactly(client, 2))[0]
    elif size == 127:
        size = struct.unpack("!Q", _exactly(client, 8))[0]
    mask = _exactly(client, 4) if second & 0x80 else b"\0\0\0\0"
    data = _exactly(client, size)
    return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def _exactly(client: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = client.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the app closed the connection")
        data += chunk
    return data
