"""A small, real Slack Web API server for tests: 127.0.0.1, a free port, stdlib http.server in a thread.

It answers the methods Countersign calls with the response shapes Slack documents (auth.test,
chat.postMessage, chat.update, chat.postEphemeral, views.open, users.info, users.lookupByEmail,
files.getUploadURLExternal + the upload URL + files.completeUploadExternal), records every call, and
can be told to answer `ratelimited` (HTTP 429 + Retry-After) or a 5xx, once or until told otherwise.

    with SlackEmulator() as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        slack.add_user("U1", "alice@example.com")
        slack.fail("chat.postMessage", status=429, retry_after=1, times=1)
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

TEAM_ID = "T0COUNTER"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"


@dataclass(frozen=True)
class Call:
    """One request the emulator answered (or refused)."""
    method: str
    args: dict
    token: str | None
    status: int
    at: float                      # time.monotonic() when it was answered
    response: dict                 # the JSON body it was answered with


@dataclass
class Failure:
    status: int
    retry_after: int | None
    remaining: int | None          # None: until cleared
    channel: str | None = None     # only calls about this channel (None: any)


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    users: dict[str, dict] = field(default_factory=dict)
    messages: dict[tuple[str, str], dict] = field(default_factory=dict)   # (channel, ts) -> message
    uploads: dict[str, dict] = field(default_factory=dict)
    failures: dict[str, Failure] = field(default_factory=dict)            # method or "*" -> failure
    views: list[dict] = field(default_factory=list)
    missing_channels: set[str] = field(default_factory=set)


class SlackEmulator:
    def __init__(self, token: str = "xoxb-test-token", app_token: str = "xapp-1-test-token") -> None:
        self.token = token
        self.app_token = app_token                   # Socket Mode's app-level token
        self.socket_mode_url: str | None = None      # what apps.connections.open hands out
        self._state = _State()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ts = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="slack-emulator", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> "SlackEmulator":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        """What WebClient(base_url=...) takes: the trailing slash matters."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/"

    # -- set-up ---------------------------------------------------------------------------------
    def add_user(self, user_id: str, email: str | None, name: str | None = None) -> None:
        name = name or (email.split("@")[0] if email else user_id.lower())
        profile = {"real_name": name, "display_name": name}
        if email is not None:
            profile["email"] = email
        with self._lock:
            self._state.users[user_id] = {
                "id": user_id, "team_id": TEAM_ID, "name": name, "real_name": name, "deleted": False,
                "is_bot": False, "tz": "Europe/London", "profile": profile}

    def fail(self, method: str = "*", *, status: int, retry_after: int | None = None,
             times: int | None = None, channel: str | None = None) -> None:
        """Answer `method` (or every method: "*") with `status` for the next `times` calls (None: until
        `recover`), only for `channel` when given. 429 answers carry Retry-After, as Slack's do."""
        with self._lock:
            self._state.failures[method] = Failure(status, retry_after, times, channel)

    def delete_channel(self, channel: str) -> None:
        """Posts to `channel` are answered `channel_not_found` from now on."""
        with self._lock:
            self._state.missing_channels.add(channel)

    def recover(self) -> None:
        with self._lock:
            self._state.failures.clear()

    # -- what happened --------------------------------------------------------------------------
    def calls(self, method: str | None = None, *, only_200: bool = True) -> list[Call]:
        """Calls answered so far, oldest first; only those answered HTTP 200 unless `only_200=False`."""
        with self._lock:
            return [c for c in self._state.calls
                    if (method is None or c.method == method) and (not only_200 or c.status == 200)]

    def message(self, channel: str, ts: str) -> dict | None:
        with self._lock:
            found = self._state.messages.get((channel, ts))
            return None if found is None else dict(found)

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        """Block until `predicate(self)` is true or `timeout` passes; every answered call wakes it."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._changed:
                self._changed.wait(min(left, 0.05))
        return True

    # -- answering (called from the handler thread) ---------------------------------------------
    def answer(self, method: str, args: dict, token: str | None) -> tuple[int, dict, dict]:
        with self._lock:
            status, body, headers = self._answer_locked(method, args, token)
            self._state.calls.append(Call(method, args, token, status, time.monotonic(), body))
            self._changed.notify_all()
        return status, body, headers

    def _answer_locked(self, method: str, args: dict, token: str | None) -> tuple[int, dict, dict]:
        failure = self._take_failure(method, args)
        if failure is not None:
            return failure
        if method.startswith("upload/"):
            return self._upload(method.split("/", 1)[1], args)
        if token != (self.app_token if method == "apps.connections.open" else self.token):
            return 200, {"ok": False, "error": "invalid_auth" if token else "not_authed"}, {}
        handler = METHODS.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        return 200, handler(self, args), {}

    def _take_failure(self, method: str, args: dict) -> tuple[int, dict, dict] | None:
        key = method if method in self._state.failures else "*" if "*" in self._state.failures else None
        if key is None:
            return None
        failure = self._state.failures[key]
        if failure.channel is not None and args.get("channel") != failure.channel:
            return None
        if failure.remaining is not None:
            failure.remaining -= 1
            if failure.remaining <= 0:
                del self._state.failures[key]
        if failure.status == 429:
            retry = failure.retry_after if failure.retry_after is not None else 1
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry)}
        return failure.status, {"ok": False, "error": "fatal_error"}, {}

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _upload(self, file_id: str, args: dict) -> tuple[int, dict, dict]:
        if file_id not in self._state.uploads:
            return 404, {"ok": False, "error": "file_not_found"}, {}
        self._state.uploads[file_id]["content"] = args.get("_raw", b"")
        return 200, {"ok": True}, {}


# -- the methods: Slack's documented response shapes ------------------------------------------------
def _auth_test(emu: SlackEmulator, args: dict) -> dict:
    return {"ok": True, "url": "https://countersign-test.slack.com/", "team": "Countersign Test",
            "user": "countersign", "team_id": TEAM_ID, "user_id": BOT_USER, "bot_id": BOT_ID,
            "is_enterprise_install": False}


def _post_message(emu: SlackEmulator, args: dict) -> dict:
    channel = args.get("channel")
    if not channel or channel in emu._state.missing_channels:
        return {"ok": False, "error": "channel_not_found"}
    if not (args.get("text") or args.get("blocks")):
        return {"ok": False, "error": "no_text"}
    ts = emu._next_ts()
    message = {"type": "message", "subtype": None, "text": args.get("text", ""), "ts": ts,
               "user": BOT_USER, "bot_id": BOT_ID, "blocks": _blocks(args),
               "thread_ts": args.get("thread_ts")}
    emu._state.messages[(channel, ts)] = message
    return {"ok": True, "channel": channel, "ts": ts, "message": message}


def _update(emu: SlackEmulator, args: dict) -> dict:
    key = (args.get("channel"), args.get("ts"))
    if key not in emu._state.messages:
        return {"ok": False, "error": "message_not_found"}
    message = emu._state.messages[key]
    message.update(text=args.get("text", message["text"]), blocks=_blocks(args))
    return {"ok": True, "channel": key[0], "ts": key[1], "text": message["text"], "message": dict(message)}


def _post_ephemeral(emu: SlackEmulator, args: dict) -> dict:
    if not args.get("channel") or not args.get("user"):
        return {"ok": False, "error": "channel_not_found" if not args.get("channel") else "user_not_in_channel"}
    return {"ok": True, "message_ts": emu._next_ts()}


def _views_open(emu: SlackEmulator, args: dict) -> dict:
    if not args.get("trigger_id"):
        return {"ok": False, "error": "invalid_trigger_id"}
    view = args.get("view")
    view = json.loads(view) if isinstance(view, str) else dict(view or {})
    stored = {"id": f"V{len(emu._state.views) + 1:08d}", "team_id": TEAM_ID, "state": {"values": {}},
              "hash": "1.abc", "root_view_id": None, "app_id": "A0COUNTER", "bot_id": BOT_ID, **view}
    emu._state.views.append(stored)
    return {"ok": True, "view": stored}


def _users_info(emu: SlackEmulator, args: dict) -> dict:
    user = emu._state.users.get(args.get("user", ""))
    return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}


def _lookup_by_email(emu: SlackEmulator, args: dict) -> dict:
    email = (args.get("email") or "").lower()
    for user in emu._state.users.values():
        if user["profile"].get("email", "").lower() == email:
            return {"ok": True, "user": user}
    return {"ok": False, "error": "users_not_found"}


def _get_upload_url(emu: SlackEmulator, args: dict) -> dict:
    if not args.get("filename") or not args.get("length"):
        return {"ok": False, "error": "invalid_arguments"}
    file_id = f"F{len(emu._state.uploads) + 1:08d}"
    emu._state.uploads[file_id] = {"filename": args["filename"], "length": int(args["length"]), "content": None}
    return {"ok": True, "upload_url": emu.base_url.replace("/api/", f"/upload/{file_id}"), "file_id": file_id}


def _complete_upload(emu: SlackEmulator, args: dict) -> dict:
    files = args.get("files")
    files = json.loads(files) if isinstance(files, str) else files or []
    done = []
    for entry in files:
        upload = emu._state.uploads.get(entry.get("id"))
        if upload is None or upload["content"] is None:
            return {"ok": False, "error": "file_not_found"}
        upload.update(channel=args.get("channel_id"), thread_ts=args.get("thread_ts"))
        done.append({"id": entry["id"], "title": entry.get("title") or upload["filename"],
                     "name": upload["filename"], "size": upload["length"]})
    return {"ok": True, "files": done}


def _connections_open(emu: SlackEmulator, args: dict) -> dict:
    if emu.socket_mode_url is None:
        return {"ok": False, "error": "not_allowed_token_type"}
    return {"ok": True, "url": emu.socket_mode_url}


def _blocks(args: dict) -> list:
    blocks = args.get("blocks")
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks or [])


METHODS = {
    "auth.test": _auth_test,
    "chat.postMessage": _post_message,
    "chat.update": _update,
    "chat.postEphemeral": _post_ephemeral,
    "views.open": _views_open,
    "users.info": _users_info,
    "users.lookupByEmail": _lookup_by_email,
    "files.getUploadURLExternal": _get_upload_url,
    "files.completeUploadExternal": _complete_upload,
    "apps.connections.open": _connections_open,
}


# -- HTTP -------------------------------------------------------------------------------------------
def _handler(emulator: SlackEmulator):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve(b"")

        def do_POST(self) -> None:
            self._serve(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        def _serve(self, raw: bytes) -> None:
            parts = urlsplit(self.path)
            method = parts.path.removeprefix("/api/").lstrip("/")
            if method.startswith("upload/"):   # the file's bytes, whatever Content-Type urllib put on them
                args = {"_raw": raw}
            else:
                args = _arguments(parts.query, raw, self.headers.get("Content-Type", ""))
            status, body, headers = emulator.answer(method, args, _token(self.headers, args))
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    return Handler


def _arguments(query: str, raw: bytes, content_type: str) -> dict:
    """Slack accepts query parameters, form bodies and JSON bodies; so does this."""
    args = dict(parse_qsl(query))
    if "application/json" in content_type and raw:
        args.update(json.loads(raw))
    elif "application/x-www-form-urlencoded" in content_type and raw:
        args.update(parse_qsl(raw.decode()))
    elif raw:
        args["_raw"] = raw
    return args


def _token(headers, args: dict) -> str | None:
    auth = headers.get("Authorization", "")
    return auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else args.get("token")
