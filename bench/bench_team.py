"""Per-read overhead of team mode against embedded mode, over loopback, in one run.

The same small reads (one row by primary key) on the same SQLite target, both through the gate with a
store of their own: embedded mode in this process (LocalGate, as `countersign run` does with no service
URL), and team mode through a RemoteGate to the team API served by a separate process under uvicorn
(as `countersign serve` serves it: own process, own interpreter, TCP on 127.0.0.1, behind the same
metrics and drain middleware). The floor is a bare Starlette app under uvicorn that echoes the same
request body to an httpx client: what any call over HTTP on this machine costs. The three are measured
in alternating blocks, so a machine that gets busier part-way through burdens them alike.
Target: at most 2 ms added per read.

    python bench/bench_team.py [--reads 2000] [--block 100]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_NAME = "bench"
BUDGET_MS = 2.0


def make_target(directory: Path) -> str:
    db = directory / "target.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price NUMERIC)")
        conn.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"item {i}", i * 1.5) for i in range(1, 1001)])
    return f"sqlite:///{db}"


def settings_for(target_url: str):
    from config.settings import Policy, Settings, Target
    return Settings(store_url=None, targets={TARGET_NAME: Target(TARGET_NAME, target_url, "sqlite", "production",
                                                                 Policy())})


def new_store(url: str):
    from audit.store import Store
    Store.upgrade(url)
    return Store.open(url)


def queries(n: int) -> list[str]:
    return [f"SELECT id, name, price FROM items WHERE id = {i % 1000 + 1}" for i in range(n)]


# -- the service process ----------------------------------------------------------------------------
def serve(target_url: str, store_url: str, port: int) -> None:
    """The team API as `countersign serve` serves it (service/wiring.py's team_api, its metrics and
    drain middleware), under uvicorn with the settings service/http_server.py gives it."""
    import uvicorn
    from starlette.applications import Starlette

    from service import health
    from service.metrics import Metrics
    from service.outbox import Outbox
    from service.wiring import team_api
    store, drain = new_store(store_url), health.Drain()
    metrics = Metrics(store, Outbox(store.engine, store.clock), drain)
    api = team_api(store, settings_for(target_url), drain=drain, on_decided=metrics.decided).start()
    app = Starlette(routes=api.routes(), middleware=[metrics.middleware(), health.drain_middleware(drain)])
    uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")).run()


def echo(port: int) -> None:
    """The floor: a bare Starlette app under uvicorn that sends back what it was sent."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def back(request: Request) -> Response:
        return Response(await request.body(), media_type="application/json")
    uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/echo", back, methods=["POST"])]), host="127.0.0.1",
                                  port=port, log_level="warning")).run()


def start_service(env: dict[str, str], *mode: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, __file__, *mode, str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, url
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit("the service did not start")
            time.sleep(0.05)


# -- the two consoles ---------------------------------------------------------------------------------
def console(gate, user: str):
    from console.session import ConsoleSession
    session = ConsoleSession(gate, user=user, target=TARGET_NAME, dialect="sqlite", environment="production")
    session.open_session("benchmark")
    return session


def timed(session, sqls: list[str]) -> list[float]:
    """Each read as the console runs it (session.submit), in milliseconds."""
    from gate.api import Status
    statements = [session.classify(sql)[0] for sql in sqls]
    took = []
    for statement in statements:
        started = time.perf_counter()
        outcome = session.submit(statement)
        took.append((time.perf_counter() - started) * 1000)
        assert outcome.status is Status.OK and len(outcome.result.rows) == 1, outcome.message
    return took


def echoes(client, body: bytes, n: int) -> list[float]:
    """The floor of a call over HTTP on this machine: a request of a read's size, echoed, in ms."""
    took = []
    for _ in range(n):
        started = time.perf_counter()
        client.post("/echo", content=body, headers={"Content-Type": "application/json"}).json()
        took.append((time.perf_counter() - started) * 1000)
    return took


def round_trips(gate, n: int) -> list[float]:
    """The floor of a call: an authenticated verb that does nothing (the service's clock), in ms."""
    took = []
    for _ in range(n):
        started = time.perf_counter()
        gate.now()
        took.append((time.perf_counter() - started) * 1000)
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--block", type=int, default=100, help="reads per alternating block")
    parser.add_argument("--serve", nargs=3, metavar=("TARGET", "STORE", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--echo", metavar="PORT", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], args.serve[1], int(args.serve[2]))
        return 0
    if args.echo:
        echo(args.echo)
        return 0

    import httpx

    from approvals.service import ApprovalService
    from gate.local import LocalGate
    from gate.remote import RemoteGate
    from service.tokens import Tokens

    work = Path(tempfile.mkdtemp(prefix="countersign-bench-team-"))
    env = {**os.environ, "XDG_STATE_HOME": str(work / "state")}   # the audit keys and anchors of this run
    os.environ.update(env)
    target_url = make_target(work)
    embedded_store = new_store(f"sqlite:///{work / 'embedded-store.db'}")
    team_store_url = f"sqlite:///{work / 'team-store.db'}"
    team_store = new_store(team_store_url)
    token = Tokens(team_store).issue("bench", label="benchmark", lifetime=timedelta(hours=1), by="bench").secret
    body = json.dumps({"args": ["0" * 36, queries(1)[0]],     # a submit's body: session id, statement
                       "kwargs": {"as_one": False, "purpose": None, "restores": None}}).encode()
    processes: list[subprocess.Popen] = []
    try:
        process, url = start_service(env, "--serve", target_url, team_store_url)
        processes.append(process)
        echo_process, echo_url = start_service(env, "--echo")
        processes.append(echo_process)
        floor = httpx.Client(base_url=echo_url, transport=httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]))
        settings = settings_for(target_url)
        local = LocalGate(store=embedded_store, approvals=ApprovalService.from_store(embedded_store),
                          resolve_target=settings.targets.__getitem__)
        remote = RemoteGate(url, token)
        sessions = {"embedded": console(local, "bench"), "team": console(remote, "bench")}
        sqls = queries(args.reads)
        for session in sessions.values():          # warm both: imports, connections, the first round trip
            timed(session, sqls[:50])
        echoes(floor, body, 50)
        took: dict[str, list[float]] = {"embedded": [], "team": [], "call": [], "echo": []}
        for start in range(0, len(sqls), args.block):
            for mode, session in sessions.items():
                took[mode] += timed(session, sqls[start:start + args.block])
            took["call"] += round_trips(remote, args.block // 4)
            took["echo"] += echoes(floor, body, args.block // 4)
        for session in sessions.values():
            session.close()
        remote.close()
        floor.close()
    finally:
        for running in processes:
            running.terminate()
            running.wait(timeout=30)
    report(took, args.reads)
    return 0


def report(took: dict[str, list[float]], reads: int) -> None:
    call, floor = statistics.median(took.pop("call")), statistics.median(took.pop("echo"))
    mean = {mode: statistics.fmean(ms) for mode, ms in took.items()}
    median = {mode: statistics.median(ms) for mode, ms in took.items()}
    p95 = {mode: statistics.quantiles(ms, n=20)[-1] for mode, ms in took.items()}
    print(f"{reads} small reads on SQLite, each through the gate with its audit events, over loopback")
    for mode in took:
        print(f"  {mode:<9} mean {mean[mode]:6.3f} ms  median {median[mode]:6.3f} ms  p95 {p95[mode]:6.3f} ms  "
              f"total {sum(took[mode]) / 1000:6.2f} s")
    added_mean, added_median = mean["team"] - mean["embedded"], median["team"] - median["embedded"]
    print(f"  team/embedded: {mean['team'] / mean['embedded']:.2f}x (mean), "
          f"{median['team'] / median['embedded']:.2f}x (median)")
    print(f"  added per read: {added_mean:.3f} ms (mean), {added_median:.3f} ms (median); "
          f"target <= {BUDGET_MS:.1f} ms: {'met' if added_median <= BUDGET_MS else 'NOT met'}")
    print(f"  of which the HTTP round trip of a call that does nothing (authenticated `now`): {call:.3f} ms (median)")
    print(f"  the floor, a bare Starlette+uvicorn echo of a read's request to httpx: {floor:.3f} ms (median)")
    print(f"  (load average while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    sys.exit(main())
