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
from typing import TYPE_CHECKING

import migrations
from domain.settings import Settings, settings

if TYPE_CHECKING:
    from domain.imports import Import


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


def cmd_mail_in(_args: argparse.Namespace) -> None:
    """The support mailbox: mail to DOSSIER_SUPPORT_ADDRESS becomes tickets and comments."""
    import logging

    from api import ticket_mail

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(ticket_mail.serve(settings))


def _bar(state: Import) -> str:
    """One line of progress: [#####-----] rows done / total, errors so far."""
    checking = state.status in ("checking", "checked")
    total = max(state.total_rows, 1)
    done = state.checked_rows if checking else state.done_rows
    errors = state.invalid_rows if checking else state.error_count
    filled = int(30 * min(done, total) / total)
    bar = "#" * filled + "-" * (30 - filled)
    return f"\r{state.status:<10} [{bar}] {done}/{state.total_rows} rows, {errors} errors"


async def _import(
    args: argparse.Namespace, data: bytes, mapping: dict[str, str] | None, saved: str | None
) -> int:
    """Upload, check and (unless --dry-run) write a file through the import workflow."""
    from sqlalchemy import select

    from domain import imports, user
    from domain.access import Role, Source
    from domain.db import create_engine, session_factory, transaction
    from domain.imports.schemas import ImportOptions, ImportStart
    from workflows.client import connect
    from workflows.imports import ImportWorkflow

    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        async with transaction(sessions) as session:
            query = select(user.User).where(user.User.role == Role.admin.value,
                                            user.User.active.is_(True))
            if args.as_user:
                query = query.where(user.User.username == args.as_user)
            admin = await session.scalar(query.order_by(user.User.id).limit(1))
            if admin is None:
                sys.exit("no such active admin: give one with --as")
            actor = await user.actor_for(session, user=admin, source=Source.imports)
            imp = await imports.service.upload(
                session, actor=actor, settings=settings, entity=imports.Entity(args.entity),
                filename=os.path.basename(args.file), data=data, sheet=args.sheet,
                mapping_name=saved,
            )
            options = ImportOptions(mapping=mapping, strategy=args.strategy,
                                    all_or_nothing=args.all_or_nothing)
            await imports.service.configure(session, actor=actor, settings=settings,
                                            import_id=imp.id, options=options)
        client = await connect(settings)
        await client.start_workflow(
            ImportWorkflow.run, ImportStart(import_id=imp.id, confirm=not args.dry_run,
                                            leads=imp.entity == imports.Entity.leads.value),
            id=settings.workflow_id("import", imp.id), task_queue=settings.temporal_task_queue,
        )
        final = {"checked"} if args.dry_run else {"done", "failed", "cancelled"}
        while True:
            async with sessions() as session:
                state = await session.get(imports.Import, imp.id)
            assert state is not None
            print(_bar(state), end="", file=sys.stderr, flush=True)
            if state.status in final or state.status in ("failed", "cancelled"):
                break
            await asyncio.sleep(0.5)
        print(file=sys.stderr)
        print(f"import {imp.id}: {state.status}; new {state.new_rows}, matched "
              f"{state.matched_rows}, invalid {state.invalid_rows}; written: created "
              f"{state.created_count}, updated {state.updated_count}, skipped "
              f"{state.skipped_count}" + (f"\n{state.error}" if state.error else ""))
        async with sessions() as session:
            for problem in await imports.service.problems(session, actor=actor,
                                                          import_id=imp.id, limit=20):
                print(f"  row {problem.row} {problem.column or ''}: {problem.message}")
        if args.dry_run:
            await client.get_workflow_handle(settings.workflow_id("import", imp.id)).cancel()
        return 1 if state.status == "failed" else 0
    finally:
        await engine.dispose()


def cmd_import(args: argparse.Namespace) -> None:
    """`--mapping` is a JSON file {header: field} if such a file exists, else a saved name."""
    import json
    from pathlib import Path

    from domain.errors import DomainError

    mapping_file = Path(args.mapping) if args.mapping else None
    from_file = mapping_file is not None and mapping_file.is_file()
    mapping = json.loads(mapping_file.read_text()) if from_file and mapping_file else None
    saved = args.mapping if args.mapping and not from_file else None
    try:
        sys.exit(asyncio.run(_import(args, Path(args.file).read_bytes(), mapping, saved)))
    except DomainError as refused:
        sys.exit(f"{refused.field or 'error'}: {refused.message}")


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
        children.append(subprocess.Popen([*me, "mail-in"], env=env))
        print(
            f"support mailbox {settings.support_address} on SMTP "
            f"{settings.mail_in_host}:{settings.mail_in_port}",
            flush=True,
        )
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
        ("mail-in", cmd_mail_in, "receive support mail over SMTP (tickets and replies)"),
        ("migrate", cmd_migrate, "apply database migrations"),
        ("seed", cmd_seed, "create the first admin or demo data in an empty database"),
    ):
        commands.add_parser(name, help=help_text).set_defaults(fn=fn)
    simulator = commands.add_parser("erp-simulator", help="serve the reference ERP simulator")
    simulator.add_argument("--port", type=int, default=8100)
    simulator.add_argument("--dossier-url", help="where to send events (default: this Dossier)")
    simulator.set_defaults(fn=cmd_erp_simulator)
    loader = commands.add_parser("import", help="import a spreadsheet (admins)")
    loader.add_argument("file")
    loader.add_argument("--entity", required=True,
                        choices=["customers", "contacts", "leads", "follow_ups", "purchases"])
    loader.add_argument("--dry-run", action="store_true", help="check and report, write nothing")
    loader.add_argument("--mapping", help="a saved mapping's name, or a JSON file {header: field}")
    loader.add_argument("--sheet")
    loader.add_argument("--strategy", default="skip", choices=["skip", "fill_empty", "overwrite"])
    loader.add_argument("--all-or-nothing", action="store_true")
    loader.add_argument("--as", dest="as_user", help="the admin the audit log names")
    loader.set_defaults(fn=cmd_import)
    revision = commands.add_parser("makemigration", help="write a migration from the models")
    revision.add_argument("message")
    revision.set_defaults(fn=cmd_makemigration)
    args = parser.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
