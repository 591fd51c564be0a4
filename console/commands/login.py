"""`countersign login [URL] [--as NAME]` and `countersign logout [URL]`: prove who you are to a team's
service through Slack, and end that proof.

Login asks the service to send you a direct message in Slack ("Is this you, logging in to Countersign
from HOST?"), waits while you answer, and saves the short-lived token it then receives (once) in your
credentials file (mode 0600). Logout revokes that token on the service and forgets it here.

URL is the service (default: $COUNTERSIGN_SERVER, else `[server] url` in the configuration). Plain
http:// is accepted only for this machine: the token would otherwise cross the network readable.
Exit codes: 0 logged in (or out); 2 refused, unreachable or bad arguments; 3 denied in Slack, not
answered in time, or already collected; 130 stopped with Ctrl-C.
"""
from __future__ import annotations

import argparse
import getpass
import ipaddress
import socket
import sys
import time
from datetime import datetime
from urllib.parse import urlsplit

from console.commands import exit_codes
from console.errors import UsageError

NOT_CONFIRMED = exit_codes.NOT_APPROVED
POLL_WAIT = 30            # seconds the service holds one poll open
RETRY_AFTER_ERROR = 2.0   # seconds before polling again after the network failed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", nargs="?", help="the service, e.g. https://countersign.example.com "
                                               "(default: $COUNTERSIGN_SERVER or [server] url)")
    if parser.prog.split()[-1] == "login":
        parser.add_argument("--as", dest="person", metavar="NAME",
                            help="the name you are known by in the service's [people] (default: your login name)")


def run(args: argparse.Namespace) -> int:
    from console.wiring import team_server_url
    url = service_url(args.url or team_server_url(args))
    if args.command == "logout":
        return logout(url)
    return login(url, args.person or getpass.getuser(), socket.gethostname())


# -- login ----------------------------------------------------------------------------------------
def login(url: str, person: str, host: str) -> int:
    import httpx

    from console import credentials
    with httpx.Client(base_url=url, timeout=httpx.Timeout(10.0, read=POLL_WAIT + 15)) as http:
        started = _call(http, "/api/v1/login", {"person": person, "host": host})
        if started is None:
            return exit_codes.USAGE
        expires = _when(started["expires_at"])
        print(f"Confirm in Slack: Countersign sent you a direct message asking whether this is you, logging in "
              f"from {host}", flush=True)
        print(f"  (waiting until {expires:%H:%M:%S %Z} for your answer; Ctrl-C stops)", flush=True)
        try:
            state = _wait(http, started, expires)
        except KeyboardInterrupt:
            print("stopped: you are not logged in (the question in Slack expires unanswered)", file=sys.stderr)
            return exit_codes.INTERRUPTED
    if state is None:
        return exit_codes.USAGE
    status = state.get("status")
    if status == "confirmed":
        credentials.save(url, state["token"], state["person"], _when(state["expires_at"]))
        print(f"Logged in to {url} as {state['person']} until {_when(state['expires_at']):%Y-%m-%d %H:%M %Z}.")
        return exit_codes.OK
    print(f"countersign login: {NOT_LOGGED_IN.get(status, f'the service answered {status!r}')}", file=sys.stderr)
    return NOT_CONFIRMED


NOT_LOGGED_IN = {
    "denied": "you answered No in Slack; you are not logged in",
    "expired": "nobody answered in Slack in time; run `countersign login` again (and check that the service "
               "knows you by this name: --as NAME)",
    "collected": "this login's token was already collected by someone else; you are not logged in. Tell your "
                 "security team, and run `countersign login` again",
}


def _wait(http, started: dict, expires: datetime) -> dict | None:
    """Poll until the login is answered; network failures are retried until the question expires."""
    body = {"login_id": started["login_id"], "poll_secret": started["poll_secret"], "wait": POLL_WAIT}
    while True:
        try:
            state = _call(http, "/api/v1/login/poll", body, quiet_network=True)
        except _Unreachable as err:
            if datetime.now(expires.tzinfo) > expires:
                print(f"countersign login: {err}", file=sys.stderr)
                return None
            time.sleep(RETRY_AFTER_ERROR)
            continue
        if state is None or state.get("status") != "pending":
            return state


# -- logout ---------------------------------------------------------------------------------------
def logout(url: str) -> int:
    import httpx

    from console import credentials
    saved = credentials.load(url)
    if saved is None:
        print(f"You are not logged in to {url}.")
        return exit_codes.OK
    revoked = True
    try:
        with httpx.Client(base_url=url, timeout=10.0) as http:
            answer = http.post("/api/v1/logout", headers={"Authorization": f"Bearer {saved.token}"})
        revoked = answer.status_code in (200, 401)   # 401: it was no longer usable anyway
        why = "" if revoked else _message(answer)
    except httpx.HTTPError as err:
        revoked, why = False, f"cannot reach {url} ({type(err).__name__})"
    credentials.forget(url)
    if not revoked:
        print(f"countersign logout: forgot the token here, but the service did not revoke it ({why}); it stays "
              f"usable until it expires unless an admin runs `countersign tokens revoke`", file=sys.stderr)
        return exit_codes.USAGE
    print(f"Logged out of {url}.")
    return exit_codes.OK


# -- HTTP -----------------------------------------------------------------------------------------
class _Unreachable(Exception):
    pass


def _call(http, path: str, body: dict, *, quiet_network: bool = False) -> dict | None:
    """The JSON answer, or None after printing the service's refusal."""
    import httpx
    try:
        answer = http.post(path, json=body)
    except httpx.HTTPError as err:
        if quiet_network:
            raise _Unreachable(f"cannot reach {http.base_url} ({type(err).__name__})") from None
        print(f"countersign login: cannot reach {http.base_url} ({type(err).__name__}: {err}); check the URL",
              file=sys.stderr)
        return None
    if answer.status_code == 200:
        return answer.json()
    print(f"countersign login: {_message(answer)}", file=sys.stderr)
    return None


def _message(answer) -> str:
    try:
        error = answer.json()["error"]
        return str(error["message"])
    except (ValueError, KeyError, TypeError):
        return f"the service answered HTTP {answer.status_code}"


# -- small pieces ---------------------------------------------------------------------------------
def service_url(url: str | None) -> str:
    """The service's base URL, refused when it would send a token in the clear over a network.

    >>> service_url("https://cs.example.com/"), service_url("http://127.0.0.1:3000")
    ('https://cs.example.com', 'http://127.0.0.1:3000')
    >>> service_url("http://cs.example.com")
    Traceback (most recent call last):
    ...
    console.errors.UsageError: http://cs.example.com sends your token unencrypted over the network; use https:// (plain http:// only for this machine: localhost, 127.0.0.1, ::1)
    """
    if not url:
        raise UsageError("which service? `countersign login URL`, or set COUNTERSIGN_SERVER or [server] url")
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{url!r} is not a service URL; write it like https://countersign.example.com")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise UsageError(f"{url} sends your token unencrypted over the network; use https:// (plain http:// "
                         "only for this machine: localhost, 127.0.0.1, ::1)")
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)
