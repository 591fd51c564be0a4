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
    """No TARGET and no targets configured: the embedded demo."""
    from console.demo import DEMO_TARGET, demo_target
    if name in (None, DEMO_TARGET) and (name == DEMO_TARGET or not settings.targets):
        return demo_target()
    if name is None:
        raise UsageError(f"name a target: {', '.join(sorted(settings.targets))}")
    try:
        return resolve_target(settings, name)
    except ConfigError as err:
        raise UsageError(str(err)) from None


def store_url(settings: Settings) -> str:
    from audit.store import default_store_url
    return settings.store_url or default_store_url()


def build_pipeline(settings: Settings, target: Target, user: str):
    from approvals.service import ApprovalService
    from audit.store import Store, StoreUnavailable
    from engines import open_driver
    from engines.base import DriverError
    from gate.local import LocalPipeline
    try:
        store = Store.open(store_url(settings))
    except StoreUnavailable as err:
        raise UsageError(f"the audit store is unavailable, so nothing may run: {err}") from None
    try:
        driver = open_driver(target.url)
    except DriverError as err:
        raise UsageError(f"cannot connect to target {target.name!r}: {err}") from None
    return LocalPipeline(target=target, driver=driver, store=store,
                         approvals=ApprovalService.from_store(store), user=user)
