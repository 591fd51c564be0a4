"""`countersign serve [--config FILE] [--host H] [--port P] [--socket-mode]`: Slack sign-off as a service.

Secrets come only from the environment: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET (HTTP mode),
SLACK_APP_TOKEN (Socket Mode). COUNTERSIGN_SLACK_API_URL points the Web API client elsewhere (tests).
Exit codes: 0 stopped cleanly; 2 configuration or store problem.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from config.settings import ConfigError, config_path

USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port for POST /slack/events and GET /healthz")
    parser.add_argument("--socket-mode", action="store_true",
                        help="take Slack's events over Socket Mode (SLACK_APP_TOKEN) instead of HTTP")


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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    client = WebClient(token=secrets.bot_token, base_url=secrets.api_url)
    refused = check_token(client)
    if refused:
        print(f"countersign serve: {refused}", file=sys.stderr)
        store.dispose()
        return USAGE
    service = wiring.build(store, client, config, signing_secret=secrets.signing_secret or "")
    service.poster.start()
    try:
        _listen(service, args, secrets)
    finally:
        service.poster.stop()
        store.dispose()
    return 0


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
    serve(service.asgi, args.host, args.port)
