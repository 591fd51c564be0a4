"""The composition root: settings + a target name -> a ready Pipeline (driver, store, approvals)."""
from __future__ import annotations

from console.errors import UsageError
from config.settings import ConfigError, Settings, Target, config_path, load_settings, resolve_target


def settings_from_args(args) -> Settings:
    try:
        return load_settings(config_path(getattr(args, "config", None)))
    except ConfigError as err:
        raise UsageError(f"configuration: {err}") from None


def choose_target(settings: Settings, name: str | None) -> Target:
    """No TARGET and no targets configured: the embedded demo.

    A URL typed as TARGET is in the process list, which every user of the machine can read, so one
    that carries a password (in the netloc or a secret-bearing query parameter) is refused. `$NAME`
    reads the URL from the environment variable NAME instead (`countersign run '$PROD_URL' ...`).
    """
    from console.demo import DEMO_TARGET, demo_target
    if name in (None, DEMO_TARGET) and (name == DEMO_TARGET or not settings.targets):
        return demo_target()
    if name is None:
        raise UsageError(f"name a target: {', '.join(sorted(settings.targets))}")
    if name.startswith("$"):
        name = _url_from_environment(name[1:])
    elif name not in settings.targets:
        _refuse_password(name)
    try:
        return resolve_target(settings, name)
    except ConfigError as err:
        raise UsageError(str(err)) from None


def _url_from_environment(variable: str) -> str:
    import os
    if not os.environ.get(variable):
        raise UsageError(f"environment variable {variable} is not set; export it with the database URL")
    return os.environ[variable]


def _refuse_password(name: str) -> None:
    from engines import mask_url
    masked = mask_url(name)
    if "://" in name and masked not in (name, "<unparseable URL>"):
        raise UsageError(f"the target URL {masked} carries a password or another secret, which the process "
                         "list shows to every user of this machine; name a configured target (its url_env holds "
                         "the URL), or export the URL and pass the variable's name: countersign run '$PROD_URL' ...")


def store_url(settings: Settings) -> str:
    from audit.store import default_store_url
    return settings.store_url or default_store_url()


def build_pipeline(settings: Settings, target: Target, user: str):
    """The embedded composition root: the in-process gate, and a console session on it."""
    from approvals.service import ApprovalService
    from audit.store import Store, StoreUnavailable
    from console.session import ConsoleSession
    from gate.local import LocalGate
    try:
        # Only the default store (no store_url, no $COUNTERSIGN_STORE) is created on first use: it is
        # this user's own SQLite file, so `countersign shell` works out of the box. A configured store
        # is shared, and its schema is changed only by `countersign store upgrade`.
        store = Store.open(store_url(settings), create=settings.store_url is None)
    except StoreUnavailable as err:
        raise UsageError(f"the audit store is unavailable, so nothing may run: {err}") from None

    def resolve(name: str) -> Target:
        return target if name == target.name else choose_target(settings, name)
    gate = LocalGate(store=store, approvals=ApprovalService.from_store(store), resolve_target=resolve,
                     reviewers=settings.reviewers_for(target))
    return ConsoleSession(gate, user=user, target=target.name, dialect=target.dialect,
                          environment=target.environment)


def open_session(session, reason: str | None) -> str:
    """Open the session on the target; a target that cannot be reached is a usage error (exit 2)."""
    from engines.base import DriverError
    try:
        return session.open_session(reason)
    except DriverError as err:
        raise UsageError(f"cannot connect to target {session.target_name!r}: {err}") from None


def store_gate(url: str | None):
    """A gate on the store alone (approvals, the trail): it opens no target."""
    from approvals.service import ApprovalService
    from audit.store import Store, default_store_url
    from gate.local import LocalGate
    store = Store.open(url or default_store_url())

    def no_targets(name: str) -> Target:
        raise UsageError(f"this command opens no target (asked for {name!r})")
    return LocalGate(store=store, approvals=ApprovalService.from_store(store), resolve_target=no_targets)

