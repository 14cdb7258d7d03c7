"""The `cockpit` command: run the whole platform, one service, or the tests."""

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from core.settings import PROJECT_ROOT, platform_settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Education cockpit: classroom devices, four-level metrics, smart patrol.")
log = logging.getLogger("cockpit")


def _logging(service: str) -> None:
    from core.process import configure_logging

    s = platform_settings()
    configure_logging(service, s.log_level, json_logs=s.env == "production")


@app.command()
def up(
    scale: Annotated[str, typer.Option(help="seed scale when the database is empty: demo or province")] = "demo",
    api_port: Annotated[int, typer.Option(envvar="API_PORT")] = 8000,
    dashboard_port: Annotated[int, typer.Option(envvar="DASHBOARD_PORT")] = 8050,
    simulate: Annotated[bool, typer.Option(help="run the device simulator")] = True,
) -> None:
    """Run everything: embedded PostgreSQL and Mosquitto unless URLs are configured, then all services."""
    from ops.stack import Stack

    _logging("stack")
    Stack(platform_settings(), scale=scale, api_port=api_port, dashboard_port=dashboard_port,
          simulate=simulate).run()


@app.command()
def migrate() -> None:
    """Apply the SQL migrations in sql/ that the database has not recorded yet."""
    from core.db import migrate as apply

    _logging("migrate")
    applied = apply(platform_settings().require_database_url())
    typer.echo(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none needed'}")


@app.command()
def seed(
    scale: Annotated[str, typer.Option(help="demo (small) or province (~10,000 schools)")] = "demo",
    seed_value: Annotated[int, typer.Option("--seed", help="random seed; same seed, same province")] = 2024,
    replace: Annotated[bool, typer.Option(help="replace an existing registry")] = False,
) -> None:
    """Seed a realistic, deterministic province registry."""
    from ops.seed.generator import seed_database

    _logging("seed")
    counts = seed_database(platform_settings().require_database_url(), scale, seed_value, replace=replace)
    typer.echo(", ".join(f"{table}: {n}" for table, n in counts.items()))


@app.command()
def ingest(worker_id: Annotated[str | None, typer.Option(help="worker id (INGEST_WORKER_ID)")] = None) -> None:
    """Run one ingest worker on the shared subscription."""
    from ingest.service import run
    from ingest.settings import ingest_settings

    _logging("ingest")
    settings = ingest_settings()
    if worker_id:
        settings = settings.model_copy(update={"worker_id": worker_id})
    run(platform_settings(), settings)


@app.command()
def patrol() -> None:
    """Run the smart patrol: rules, alerts, notices, work orders and daily rounds."""
    from patrol.service import run
    from patrol.settings import patrol_settings

    _logging("patrol")
    run(platform_settings(), patrol_settings())


@app.command()
def snapshots() -> None:
    """Run the snapshot intake: camera stills in, checked for video health, the latest kept (智能巡课)."""
    from patrol.snapshot_service import run
    from patrol.snapshots import snapshot_settings

    _logging("snapshots")
    run(platform_settings(), snapshot_settings())


@app.command()
def rollups(interval_s: Annotated[float, typer.Option(help="seconds between rollup refreshes")] = 60.0,
            now_interval_s: Annotated[float, typer.Option(help="seconds between per-school state refreshes")] = 5.0
            ) -> None:
    """Refresh the rollups, the per-school current state and the three-classroom sessions on a schedule."""
    from rollups.service import run

    _logging("rollups")
    run(platform_settings(), interval_s=interval_s, now_interval_s=now_interval_s)


@app.command()
def api(host: str | None = None, port: int | None = None) -> None:
    """Serve the metrics API."""
    import uvicorn

    from api.settings import api_settings

    _logging("api")
    s = api_settings()
    # proxy_headers off: uvicorn would otherwise take X-Forwarded-For from local callers, letting
    # them choose the address logins are throttled by (the cockpit forwards it its own way)
    uvicorn.run("api.main:create_app", factory=True, host=host or s.host, port=port or s.port,
                log_level="warning", access_log=False, proxy_headers=False)


@app.command()
def dashboard() -> None:
    """Serve the cockpit."""
    from dashboard.app import main

    _logging("dashboard")
    main()


@app.command()
def simulate(limit: Annotated[int | None, typer.Option(help="only the first N devices")] = None,
             rate: Annotated[float | None, typer.Option(help="load mode: readings per second over all devices")] = None,
             fault_scale: Annotated[float | None, typer.Option(help="how often faults strike (0: never, 1: usual)")]
             = None,
             fault: Annotated[list[str] | None, typer.Option(help="inject DEVICE:FAULT[:MINUTES] at start (repeatable)")]
             = None) -> None:
    """Run the device simulator over every registered device."""
    from core.process import run_until_shutdown
    from devices.faults import parse_injection
    from devices.fleet import Fleet
    from devices.settings import simulator_settings
    from devices.simulator import build

    _logging("simulator")
    try:
        injections = [parse_injection(text) for text in fault or []]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fault") from None
    if rate is not None and rate <= 0:
        raise typer.BadParameter("must be positive", param_hint="--rate")
    p = platform_settings()
    overrides = {"limit": limit, "rate": rate, "fault_scale": fault_scale}
    settings = simulator_settings().model_copy(update={k: v for k, v in overrides.items() if v is not None})
    sim = build(p.require_database_url(), Fleet(p.require_broker()), settings, p.timezone)
    for device_id, name, minutes in injections:
        try:
            sim.inject(device_id, name, minutes)
        except KeyError as exc:
            raise typer.BadParameter(str(exc), param_hint="--fault") from None
    run_until_shutdown(sim.run, "simulator", join_timeout_s=10)


@app.command("broker-auth")
def broker_auth(
    out: Annotated[Path, typer.Option(help="folder for the password file and the access list")],
    device_secret: Annotated[str, typer.Option(envvar="COCKPIT_DEVICE_SECRET", help="provisioning secret")],
    platform_password: Annotated[str, typer.Option(envvar="COCKPIT_MQTT_PLATFORM_PASSWORD",
                                                   help="secret the services' broker passwords derive from")],
    ingest_workers: Annotated[str, typer.Option(envvar="COCKPIT_MQTT_INGEST_WORKERS",
                                                help="comma-separated INGEST_WORKER_IDs given a broker account")]
    = "1",
    reload_pid: Annotated[int | None, typer.Option(help="broker process to signal to re-read them")] = None,
    watch: Annotated[bool, typer.Option(help="keep running: rewrite and reload whenever the registry's devices "
                                             "change (ops/broker_sync.py)")] = False,
) -> None:
    """Write the broker's password file, access list and TLS listener from the registry and settings."""
    import signal

    import psycopg

    from ops.broker_auth import service_rules, tls_listener, write_files

    s = platform_settings()
    workers = [w.strip() for w in ingest_workers.split(",") if w.strip()]
    try:
        tls = tls_listener(s.mqtt_tls_cert_file, s.mqtt_tls_key_file, s.mqtt_tls_port)
        with psycopg.connect(s.require_database_url()) as conn:
            passwords, acl = write_files(conn, out, device_secret, platform_password, tls, ingest_workers=workers)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if watch:
        from core.process import run_until_shutdown
        from ops.broker_sync import BrokerSync

        def reload() -> None:
            if reload_pid:
                os.kill(reload_pid, signal.SIGHUP)

        sync = BrokerSync(s.require_database_url(), lambda conn: write_files(
            conn, out, device_secret, platform_password, tls, ingest_workers=workers), reload)
        print(f"watching the registry; rewriting {passwords} and {acl} on every change", flush=True)
        run_until_shutdown(sync.run, "broker-auth")
        return
    print(f"wrote {passwords} and {acl}" + (f"; a TLS listener on port {tls.port}" if tls else ""))
    print(f"service accounts: {', '.join(service_rules(workers))}")
    if reload_pid:
        os.kill(reload_pid, signal.SIGHUP)
        print(f"asked broker process {reload_pid} to reload them")


@app.command("vendor-key")
def vendor_key(vendor: Annotated[str, typer.Argument(help="the vendor, as registered in device.vendor")],
               revoke: Annotated[bool, typer.Option(help="revoke the vendor's keys instead")] = False) -> None:
    """Issue a key for a vendor platform's HTTP push (printed once; only its hash is kept), or revoke its keys."""
    import getpass

    import psycopg

    from api.ingest_push.service import issue_key, revoke_keys

    who = f"cli:{getpass.getuser()}"
    with psycopg.connect(platform_settings().require_database_url()) as conn:
        if revoke:
            typer.echo(f"revoked {revoke_keys(conn, vendor, who)} key(s) of {vendor}")
            return
        key = issue_key(conn, vendor, who)
    typer.echo(f"X-Vendor-Key for {vendor} (shown once, keep it secret):\n{key}")


@app.command("import")
def import_command(
    files: Annotated[list[Path], typer.Argument(
        help="an XLSX workbook, a folder of CSV files or CSV files (one per sheet, named by it); "
             "or 'template OUT.xlsx' to write the template")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check and count only; write nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Import schools, devices, communities, users and divisions from a bureau's spreadsheet, all or nothing."""
    import getpass
    import json

    import psycopg

    from api.registry import importer

    if files[0].name == "template" and not files[0].exists():
        if len(files) != 2:
            raise typer.BadParameter("usage: cockpit import template OUT.xlsx")
        importer.write_template(files[1])
        typer.echo(f"wrote the import template to {files[1]}")
        return
    try:
        book = importer.read_workbook(files if len(files) > 1 else files[0])
    except (importer.FileError, OSError) as exc:
        typer.echo(f"{getattr(exc, 'zh', '')} {exc}".strip(), err=True)
        raise typer.Exit(2) from None
    with psycopg.connect(platform_settings().require_database_url()) as conn:
        report = importer.apply(conn, book, f"cli:{getpass.getuser()}", dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        for e in report.errors:
            typer.echo(f"{e.sheet} 第{e.row}行 {e.column or ''}: {e.reason_zh} / {e.reason_en}", err=True)
        for w in report.warnings:
            typer.echo(f"{w.sheet} 第{w.row}行 {w.column or ''}: {w.reason_zh} / {w.reason_en}")
        for kind, counts in report.changes.items():
            typer.echo(f"{kind}: " + ", ".join(f"{k} {n}" for k, n in counts.items()))
        for p in report.passwords:
            typer.echo(f"password for {p['username']} (shown once): {p['password']}")
        verdict = ("dry run: nothing written" if dry_run else "applied") if report.ok else \
            f"refused: {len(report.errors)} error(s), nothing written"
        typer.echo(f"{report.file} (sha256 {report.sha256[:12]}…): {verdict}; {report.changed} changed")
    raise typer.Exit(0 if report.ok else 1)


@app.command("backup")
def backup_command(out: Annotated[Path, typer.Argument(help="dump file to write")],
                   raw: Annotated[bool, typer.Option(help="include raw telemetry (large)")] = False) -> None:
    """Dump the registry, alerts, targets and rollups (and raw telemetry with --raw)."""
    from ops.backup import backup

    backup(platform_settings().require_database_url(), out, include_raw=raw)
    typer.echo(f"wrote {out} ({out.stat().st_size:,} bytes)")


@app.command("restore")
def restore_command(dump: Annotated[Path, typer.Argument(help="dump file made by 'cockpit backup'")]) -> None:
    """Restore a dump into the configured (empty) database."""
    from ops.backup import restore

    restore(platform_settings().require_database_url(), dump)
    typer.echo(f"restored {dump}")


@app.command("contract-schemas")
def contract_schemas(out: Annotated[Path, typer.Option(help="folder for the schema files")] = PROJECT_ROOT / "docs" / "schemas") -> None:
    """Write the JSON Schema of every device payload, generated from the contract models."""
    import json

    from core.contract import json_schemas

    out.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (out / name).write_text(json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    typer.echo(f"wrote {len(json_schemas())} schemas to {out}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test(ctx: typer.Context) -> None:
    """Lint, then run the whole test suite (it starts its own PostgreSQL and Mosquitto)."""
    python = Path(sys.executable)
    lint = subprocess.run([str(python), "-m", "ruff", "check", "."], cwd=PROJECT_ROOT)
    if lint.returncode != 0:
        raise typer.Exit(lint.returncode)
    env = {**os.environ, "COCKPIT_ENV": "test"}
    result = subprocess.run([str(python), "-m", "pytest", *ctx.args], cwd=PROJECT_ROOT, env=env)
    raise typer.Exit(result.returncode)


if __name__ == "__main__":
    app()
