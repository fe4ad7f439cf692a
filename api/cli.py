"""`dossier` command line: run the whole system, or one part of it, and admin chores."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time

import migrations
from domain.settings import Settings, settings


def _binary(name: str) -> str:
    found = shutil.which(name, path=sysconfig.get_path("scripts")) or shutil.which(name)
    if found is None:
        sys.exit(f"{name} not found: install the project with `make run` or `pip install -e .`")
    return found


def _wait_for_port(host: str, port: int, *, seconds: float, process: subprocess.Popen) -> None:
    """Until something listens there; fail early if the process that should listen has died."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{process.args[0]} exited with code {process.returncode}")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    sys.exit(f"nothing listens on {host}:{port} after {seconds:.0f} s")


def _migrate(config: Settings) -> None:
    config.var_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(config.database_url)


def cmd_migrate(_args: argparse.Namespace) -> None:
    _migrate(settings)
    print("database is at the newest revision")


def cmd_makemigration(args: argparse.Namespace) -> None:
    migrations.make_revision(settings.database_url, args.message)


def cmd_seed(_args: argparse.Namespace) -> None:
    from domain import seed

    _migrate(settings)
    print(asyncio.run(seed.seed_if_empty(settings)))


def cmd_worker(_args: argparse.Namespace) -> None:
    import worker

    worker.main()


def cmd_api(_args: argparse.Namespace) -> None:
    import uvicorn

    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        log_level="info",
    )


def cmd_erp_simulator(args: argparse.Namespace) -> None:
    """The reference ERP (docs/erp.md), sending its events to this Dossier."""
    import uvicorn

    from api.erp_simulator import create_simulator

    app = create_simulator(dossier_url=args.dossier_url or settings.base_url,
                           secret=settings.erp_signing_secret())
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


def cmd_run(_args: argparse.Namespace) -> None:
    """Everything on one machine: migrate, seed, Temporal dev server, worker, API and pages."""
    from domain import seed

    _migrate(settings)
    print(asyncio.run(seed.seed_if_empty(settings)), flush=True)
    children: list[subprocess.Popen] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        if settings.temporal_address is None:
            temporal = subprocess.Popen(
                [
                    _binary("temporal"),
                    "server",
                    "start-dev",
                    "--ip",
                    "127.0.0.1",
                    "--port",
                    str(settings.temporal_dev_port),
                    "--ui-port",
                    str(settings.temporal_ui_port),
                    "--db-filename",
                    str(settings.var_dir / "temporal.db"),
                    "--namespace",
                    settings.temporal_namespace,
                    "--log-level",
                    "warn",
                ],
                env=env,
            )
            children.append(temporal)
            _wait_for_port("127.0.0.1", settings.temporal_dev_port, seconds=60, process=temporal)
            print(
                f"Temporal dev server on 127.0.0.1:{settings.temporal_dev_port}, "
                f"UI http://127.0.0.1:{settings.temporal_ui_port}",
                flush=True,
            )
        me = [sys.executable, "-m", "api.cli"]
        if settings.erp_url is None:
            from api.erp_simulator import PORT

            settings.erp_signing_secret()  # made once here, not raced for by three processes
            simulator = subprocess.Popen([*me, "erp-simulator", "--port", str(PORT)], env=env)
            children.append(simulator)
            _wait_for_port("127.0.0.1", PORT, seconds=30, process=simulator)
            env["DOSSIER_ERP_URL"] = f"http://127.0.0.1:{PORT}"
            print(f"reference ERP simulator on http://127.0.0.1:{PORT} (docs/erp.md)", flush=True)
        children.append(subprocess.Popen([*me, "worker"], env=env))
        api = subprocess.Popen([*me, "api"], env=env)
        children.append(api)
        _wait_for_port(settings.host, settings.port, seconds=60, process=api)
        print(f"\nDossier is up: {settings.base_url}  (Ctrl-C stops everything)\n", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = next(child for child in children if child.poll() is not None)
        sys.exit(f"{' '.join(map(str, failed.args[:3]))} stopped with code {failed.returncode}")
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    finally:
        _stop(children)


def _stop(children: list[subprocess.Popen]) -> None:
    """Newest first, so the API and worker finish before Temporal goes away."""
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dossier", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, fn, help_text in (
        ("run", cmd_run, "start the whole system on its embedded defaults"),
        ("api", cmd_api, "serve the API and pages"),
        ("worker", cmd_worker, "run the Temporal worker"),
        ("migrate", cmd_migrate, "apply database migrations"),
        ("seed", cmd_seed, "create the first admin or demo data in an empty database"),
    ):
        commands.add_parser(name, help=help_text).set_defaults(fn=fn)
    simulator = commands.add_parser("erp-simulator", help="serve the reference ERP simulator")
    simulator.add_argument("--port", type=int, default=8100)
    simulator.add_argument("--dossier-url", help="where to send events (default: this Dossier)")
    simulator.set_defaults(fn=cmd_erp_simulator)
    revision = commands.add_parser("makemigration", help="write a migration from the models")
    revision.add_argument("message")
    revision.set_defaults(fn=cmd_makemigration)
    args = parser.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
