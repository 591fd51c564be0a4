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



# -- where a command's targets and gate are: this process (embedded) or the team's service -------------
TEAM_ONLY_SERVICE_TABLES = ("targets", "policies", "store")


def team_server_url(args) -> str | None:
    """The team service's URL when this console is in team mode: $COUNTERSIGN_SERVER, else `[server]
    url` in the console's configuration (read as plain TOML: a team console's file may not even load
    as an embedded configuration, and that must not hide why it is refused)."""
    import os
    from config.settings import read_toml
    if os.environ.get("COUNTERSIGN_SERVER", "").strip():
        return os.environ["COUNTERSIGN_SERVER"].strip()
    path = config_path(getattr(args, "config", None))
    if path is None:
        return None
    try:
        server = read_toml(path).get("server")
    except ConfigError as err:
        raise UsageError(f"configuration: {err}") from None
    url = server.get("url") if isinstance(server, dict) else None
    return url.strip() if isinstance(url, str) and url.strip() else None


def refuse_local_authority(args, env=None) -> None:
    """In team mode the service alone decides who you are, which databases exist, which policy
    applies and what the trail holds: anything on this machine that claims to is refused, saying why."""
    import os
    from config.settings import read_toml
    env = os.environ if env is None else env
    why = "in team mode the service decides"
    if env.get("COUNTERSIGN_USER", "").strip():
        raise UsageError(f"COUNTERSIGN_USER is set, but {why} who you are, from your login token; unset it "
                         "(`unset COUNTERSIGN_USER`) — to act as someone else, they must log in themselves")
    if env.get("COUNTERSIGN_STORE", "").strip():
        raise UsageError(f"COUNTERSIGN_STORE is set, but {why} what the audit trail holds and a console has no "
                         "store at all; unset it (an auditor reads the trail through the service)")
    path = config_path(getattr(args, "config", None))
    data = read_toml(path) if path is not None else {}
    local = [f"[{name}]" for name in TEAM_ONLY_SERVICE_TABLES if name in data]
    if local:
        raise UsageError(f"{path} has {', '.join(local)}, but {why} the targets, their policies and the store: "
                         "a console's configuration holds only [server] url and [history]; remove the "
                         f"table(s), and ask an admin to change the service's configuration")


class EmbeddedConsole:
    """Everything in this process: the configuration's targets, the gate, the store."""
    team = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def user(self) -> str:
        from approvals.identity import current_user
        return current_user()

    def target(self, name: str | None) -> Target:
        return choose_target(self.settings, name)

    def pipeline(self, target: Target):
        return build_pipeline(self.settings, target, self.user)

    def close(self) -> None:
        pass


class TeamConsole:
    """A thin client: the team's service holds the targets, the policies, the store and the gate; the
    person is the one the login token was issued to."""
    team = True

    def __init__(self, settings: Settings, gate, person: str) -> None:
        self.settings, self.gate, self.user = settings, gate, person

    def target(self, name: str | None) -> Target:
        """The service's target of that name, as the console needs it (never its URL). The policy here
        carries only its name and whether it asks for a reason: the service applies the real one."""
        from config.settings import Policy
        if name is None:
            raise UsageError(f"name one of the targets of the service at {self.gate.server_url}")
        if "://" in name or name.startswith("$"):
            raise UsageError("in team mode the console holds no database URL: name one of the service's targets "
                             "(the service alone holds their credentials)")
        info = self.gate.target(name)
        return Target(info["name"], "", info["dialect"], info["environment"],
                      Policy(name=info["policy"], require_reason=info["require_reason"]))

    def pipeline(self, target: Target):
        from console.session import ConsoleSession
        return ConsoleSession(self.gate, user=self.user, target=target.name, dialect=target.dialect,
                              environment=target.environment)

    def close(self) -> None:
        self.gate.close()


def console_for(args):
    """The console a command runs in: team mode when a service URL is set, embedded otherwise. Built
    once per command."""
    if getattr(args, "_console", None) is None:
        url = team_server_url(args)
        args._console = team_console(args, url) if url else EmbeddedConsole(settings_from_args(args))
    return args._console


def team_console(args, url: str) -> TeamConsole:
    import os
    from console import credentials
    from gate.remote import RemoteGate
    refuse_local_authority(args)
    token = os.environ.get("COUNTERSIGN_TOKEN", "").strip()
    if not token:
        saved = credentials.load(url)
        if saved is None:
            raise UsageError(f"not logged in to the Countersign service at {url}: run `countersign login {url}` "
                             "(or set COUNTERSIGN_TOKEN to a token an admin issued)")
        token = saved.token
    gate = RemoteGate(url, token)
    try:
        person = gate.whoami().person
    except BaseException:
        gate.close()
        raise
    return TeamConsole(settings_from_args(args), gate, person)
