"""API benchmark at province scale: overview and 30-day trend per level, bare SQL beside it, 50 clients;
then figures and rankings over a month and a term (and the term's lesson hours) beside the "now" figures.

    python -m bench.api                 # province scale (~10,000 schools, ~215,000 devices, the term so far)
    python -m bench.api --scale demo    # quick run on the demo province
    python -m bench.api --days 30       # 30 days of rollups instead of the term

It starts its own PostgreSQL (data kept under var/bench-api so reruns skip the seeding),
seeds the registry, current state and daily rollups from the first day of the term (or the
last --days days), starts the API as a separate process and measures it over HTTP; then runs
the same figure's SQL directly. The period rows ask the figures the cockpit's overview asks
(availability and use) with period=this_month, last_month and this_term, and the ranking of
board availability over the same periods; their baseline is the same request for "now",
measured in the same run.
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
from psycopg.rows import dict_row

from core.db import migrate
from core.settings import PROJECT_ROOT, platform_settings
from ops.embedded import EmbeddedPostgres, free_port
from ops.seed.generator import DEMO_PASSWORD, seed_database
from ops.seed.history import current_state, rollups
from rollups.service import recount_counties

PERIOD_KEYS = "online_rate,board_online_rate,recorder_online_rate,gateway_online_rate,use_hours_per_board_day"
LENS_KEYS = "online_rate,board_online_rate,use_hours_per_board_day,powered_on_rate_school_hours"


def prepare(scale: str, days: int | None, data_dir: Path) -> tuple[EmbeddedPostgres, str]:
    """Start the benchmark database and fill it once (days: None for the term so far)."""
    pg = EmbeddedPostgres(data_dir / f"{scale}-{days or 'term'}").start()
    url = pg.url
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        recount_counties(cur, platform_settings().timezone)  # what the rollups service does on its round
    with psycopg.connect(url, row_factory=dict_row) as conn:
        seeded = conn.execute("SELECT count(*) AS n FROM school").fetchone()["n"]
    if not seeded:
        t = time.perf_counter()
        counts = seed_database(url, scale)
        print(f"seeded {counts['school']:,} schools, {counts['device']:,} devices in {time.perf_counter() - t:.1f}s")
        with psycopg.connect(url, autocommit=True) as conn:
            t = time.perf_counter()
            current_state(conn)
            rollups(conn, platform_settings().timezone, hours=0, days=days)
            conn.execute("VACUUM ANALYZE")
            print(f"current state and {days or 'the term’s'} days of rollups in {time.perf_counter() - t:.1f}s")
    return pg, url


def start_api(url: str) -> tuple[subprocess.Popen, str]:
    """The API as its own process, as in production."""
    port = free_port()
    # The rollups service keeps school_now fresh in production; here it is refreshed once
    # before measuring, so requests measure reading, not refreshing.
    env = {**os.environ, "COCKPIT_DATABASE_URL": url, "COCKPIT_MQTT_URL": "mqtt://127.0.0.1:1",
           "API_SECRET_KEY": "b" * 48, "API_POOL_SIZE": "20", "COCKPIT_ENV": "development",
           "METRICS_NOW_MAX_AGE_S": "3600"}
    proc = subprocess.Popen([sys.executable, "-m", "ops.cli", "api", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{base}/readyz", timeout=1).is_success:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("API did not start")


def pct(samples: list[float], q: float) -> float:
    """The q-quantile of samples, in milliseconds."""
    ordered = sorted(samples)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn, n: int) -> list[float]:
    """n durations of fn() in seconds, after two warm-up calls."""
    fn(), fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def bare_sql(url: str, level: str, code: str, path: str) -> callable:
    """The same figure computed in-process straight from SQL, without HTTP."""
    from api.auth.models import User
    from api.metrics import trends
    from api.scopes.access import resolve
    from api.scopes.service import overview

    conn = psycopg.connect(url, row_factory=dict_row, autocommit=True)
    user = User(username="admin", display_name="admin", role="admin", scope_level="province", scope_code="420000")
    scope = resolve(conn, user, level, code)
    if path == "overview":
        return lambda: overview(conn, scope, user)
    return lambda: trends.trend(conn, scope, user, "online_rate", "day", 30)


def throughput(base: str, token: str, paths: list[str], clients: int, seconds: float) -> float:
    """Requests per second sustained by `clients` concurrent clients."""
    done = [0] * clients
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
            while time.monotonic() < stop:
                c.get(paths[done[i] % len(paths)]).raise_for_status()
                done[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / seconds


def period_rows(http: httpx.Client, levels: list[tuple[str, str]], n: int) -> None:
    """Figures and rankings over a month and the term beside the same request for now, per level."""
    print(f"\n{'request over a period':<44}{'API p50':>10}{'API p95':>10}{'now p50':>10}{'now p95':>10}")
    for level, code in levels:
        base = f"/api/v1/scopes/{level}/{code}"
        asks = [("figures", f"{base}/figures", {"keys": PERIOD_KEYS}),
                ("ranking", f"{base}/ranking", {"figure": "board_online_rate", "limit": 10000})]
        for name, path, params in asks:
            now_t = timed(lambda p=path, q=params: http.get(p, params=q).raise_for_status(), n)
            periods = [{"period": "this_month"}, {"period": "last_month"}, {"period": "this_term"}]
            if name == "figures":
                periods.append({"period": "this_term", "hours": "lessons", "keys": LENS_KEYS})
            for extra in periods:
                asked = params | extra
                t = timed(lambda p=path, q=asked: http.get(p, params=q).raise_for_status(), n)
                label = f"{name} {level} {extra['period']}" + (" lessons" if "hours" in extra else "")
                print(f"{label:<44}{pct(t, .5):>9.1f} {pct(t, .95):>9.1f} {pct(now_t, .5):>9.1f} "
                      f"{pct(now_t, .95):>9.1f}")


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=("demo", "province"), default="province")
    parser.add_argument("--days", type=int, default=None, help="days of rollups (default: the term so far)")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT / "var" / "bench-api")
    args = parser.parse_args()
    pg, url = prepare(args.scale, args.days, args.data)
    from rollups.school_now import refresh as refresh_now

    with psycopg.connect(url, autocommit=True) as conn:
        refresh_now(conn)
    api, base = start_api(url)
    try:
        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": DEMO_PASSWORD}
                           ).json()["access_token"]
        with psycopg.connect(url) as conn:
            school = conn.execute("SELECT code FROM school WHERE county_code = '421303' ORDER BY code").fetchone()[0]
        levels = [("province", "420000"), ("city", "421300"), ("county", "421303"), ("school", school)]
        http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        print(f"\n{'request':<28}{'API p50':>10}{'API p95':>10}{'SQL p50':>10}{'SQL p95':>10}{'overhead':>10}")
        for level, code in levels:
            for name, path in (("overview", f"/api/v1/scopes/{level}/{code}/overview"),
                               ("trend 30d", f"/api/v1/scopes/{level}/{code}/trend?figure=online_rate&days=30")):
                api_t = timed(lambda p=path: http.get(p).raise_for_status(), args.requests)
                sql_t = timed(bare_sql(url, level, code, "overview" if name == "overview" else "trend"),
                              args.requests)
                overhead = statistics.median(api_t) / statistics.median(sql_t) - 1
                print(f"{name + ' ' + level:<28}{pct(api_t, .5):>9.1f} {pct(api_t, .95):>9.1f} "
                      f"{pct(sql_t, .5):>9.1f} {pct(sql_t, .95):>9.1f} {overhead:>9.0%}")
        period_rows(http, levels[:3], args.requests)
        paths = [f"/api/v1/scopes/{lv}/{c}/overview" for lv, c in levels]
        rps = throughput(base, token, paths, args.clients, args.seconds)
        print(f"\n{args.clients} concurrent clients, mixed overviews for {args.seconds:.0f}s: {rps:,.0f} requests/s")
    finally:
        api.terminate()
        api.wait(10)
        pg.stop()


if __name__ == "__main__":
    main()
