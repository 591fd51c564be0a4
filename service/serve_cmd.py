"""`countersign serve [--config FILE] [--host H] [--port P] [--socket-mode] [--log-format json|text]
[--drain-seconds N] [--idle-seconds N]`: Slack sign-off as a service, and the team API consoles use
(/api/v1, service/gate_api.py: the gate over the service's own targets, policies and store).

Secrets come only from the environment: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET (HTTP mode),
SLACK_APP_TOKEN (Socket Mode). COUNTERSIGN_SLACK_API_URL points the Web API client elsewhere (tests).
On SIGTERM or SIGINT it drains (service/http_server.py), then the poster sends what it holds the lease
for (at most FLUSH_SECONDS) and releases the lease, and the store is closed.
Exit codes: 0 stopped cleanly; 2 configuration or store problem.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading

from config.settings import ConfigError, config_path

USAGE = 2
DRAIN_SECONDS = 20.0    # default --drain-seconds: what in-flight work gets after a SIGTERM
FLUSH_SECONDS = 5.0     # then the poster's last round of posts gets this long
IDLE_SECONDS = 300.0    # default --idle-seconds (consoles heartbeat every 60 s while a session is open)
SECRET_ENV = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")
log = logging.getLogger("countersign.serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000,
                        help="port for POST /slack/events, GET /healthz, /readyz and /metrics")
    parser.add_argument("--socket-mode", action="store_true",
                        help="take Slack's events over Socket Mode (SLACK_APP_TOKEN) instead of HTTP")
    parser.add_argument("--log-format", choices=("json", "text"), default=None,
                        help="log lines as JSON or text (default: text on a terminal, JSON otherwise)")
    parser.add_argument("--drain-seconds", type=_seconds, default=DRAIN_SECONDS, metavar="N",
                        help=f"after SIGTERM, how long in-flight work may take to finish (default {DRAIN_SECONDS:.0f})")
    parser.add_argument("--idle-seconds", type=_seconds, default=IDLE_SECONDS, metavar="N",
                        help="close a console's session after N seconds without a call or heartbeat: its console "
                             f"is gone (default {IDLE_SECONDS:.0f})")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 3600")
    return value


def run(args: argparse.Namespace) -> int:
    from slack_sdk import WebClient

    from audit.store import Store, StoreUnavailable, default_store_url
    from service import slack_settings, wiring
    env = dict(os.environ)
    try:
        settings, config = slack_settings.load(config_path(getattr(args, "config", None), env), env)
        secrets = slack_settings.secrets(env, socket_mode=args.socket_mode)
        store = Store.open(settings.store_url or default_store_url())
    except (ConfigError, StoreUnavailable) as err:
        print(f"countersign serve: {err}", file=sys.stderr)
        return USAGE
    from service import logs
    logs.configure(args.log_format or logs.default_format(sys.stderr), secrets=_secret_values(env, settings))
    client = WebClient(token=secrets.bot_token, base_url=secrets.api_url)
    refused = check_token(client)
    if refused:
        print(f"countersign serve: {refused}", file=sys.stderr)
        store.dispose()
        return USAGE
    service = wiring.build(store, client, config, signing_secret=secrets.signing_secret or "", settings=settings,
                           idle_timeout=args.idle_seconds)
    service.poster.start()
    service.team.start()
    try:
        _listen(service, args, secrets)
    finally:
        _stop(service, args.drain_seconds)
    if not service.drain.idle():
        # A click stuck on Slack would hold the process past its drain time (concurrent.futures joins its
        # threads at exit). What that click had not committed is not recorded, as after a kill.
        logging.shutdown()
        os._exit(0)
    return 0


def _secret_values(env: dict[str, str], settings) -> list[str]:
    """What the logs must never show: the Slack secrets and the passwords in the database URLs."""
    from service.logs import url_password
    urls = [settings.store_url, *(t.url for t in settings.targets.values())]
    return [env[name] for name in SECRET_ENV if env.get(name)] + [p for p in map(url_password, urls) if p]


def _stop(service, drain_seconds: float) -> None:
    """After the listener returned: let admitted work finish, flush the poster, close the store."""
    service.drain.begin()                 # Socket Mode, or a server that stopped on its own
    if not service.drain.wait_idle(max(0.0, drain_seconds - service.drain.elapsed())):
        log.warning("stopping with work still in flight", extra={"in_flight": service.drain.in_flight})
    if service.team is not None:
        service.team.stop()               # consoles' sessions still open end now, each with its session_end
    poster = service.poster
    poster.stop(release=False)
    # One last round, bounded: posts for the decisions just taken go out now, not after the lease lapses.
    flush = threading.Thread(target=_flush, args=(poster,), name="countersign-flush", daemon=True)
    flush.start()
    flush.join(FLUSH_SECONDS)
    if flush.is_alive():   # Slack is slow: leave the lease to lapse rather than let another holder re-send
        log.warning("the poster's last round did not finish within %.0fs; its lease will lapse", FLUSH_SECONDS)
    else:
        poster.outbox.release(poster.holder)
    service.store.dispose()
    log.info("stopped")


def _flush(poster) -> None:
    try:
        poster.tick()
    except Exception:  # noqa: BLE001 - what is not sent now stays in the outbox for the next holder
        log.exception("the poster's last round failed; what it did not send stays in the outbox")


def check_token(client) -> str | None:
    """Why Slack refuses the bot token (None when it accepts it, or cannot be reached: then the service
    starts anyway and its posts wait in the outbox)."""
    from slack_sdk.errors import SlackApiError
    try:
        client.auth_test()
    except SlackApiError as err:
        if err.response.status_code == 200:
            return f"Slack refuses SLACK_BOT_TOKEN ({err.response.get('error')}); check the token"
        logging.getLogger("countersign.serve").warning("auth.test failed (HTTP %s); starting anyway",
                                                       err.response.status_code)
    except OSError as err:
        logging.getLogger("countersign.serve").warning("Slack is unreachable (%s); starting anyway", err)
    return None


def _listen(service, args: argparse.Namespace, secrets) -> None:
    if args.socket_mode:
        from service.socket_mode import serve
        serve(service.bolt, secrets.app_token)
        return
    from service.http_server import serve
    serve(service.asgi, args.host, args.port, drain=service.drain, drain_seconds=args.drain_seconds)
