"""Cockpit benchmark: first full render of the overview, and server time of each live refresh.

    python -m bench.cockpit

Starts its own PostgreSQL with the demo province and its simulated past, the API and
the cockpit as separate processes, and headless Chromium. First render: from
navigation to every tile and chart of the overview filled in, logged in, 5 page loads.
Live refresh: for 30 s of refreshes, the server time of every Dash callback request,
from Chromium's own network timings (request sent → response headers received).

    python -m bench.cockpit --wall-minutes 30
    python -m bench.cockpit --map

The wall instead (`wall`): a province display link rotating three pages every 15 s, left running N
minutes at 1920×1080 with the cockpit's default refresh; the browser's JS heap after a forced garbage
collection (CDP HeapProfiler.collectGarbage, then Runtime.getHeapUsage), its DOM nodes and listeners
(Memory.getDOMCounters), and the resident memory of the API and cockpit processes, every 5 minutes.

The map instead (`--map`): the map page at the province and at a county, from navigation to the map
drawn (its areas, or its school points), 6 loads each (the first after the API started: it simplifies the
boundaries); the bytes of the API's answer and of the callback that sends the map to the browser, and of
the live refreshes that follow (the colours only).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from core.db import migrate
from ops.embedded import EmbeddedPostgres, free_port
from ops.seed.generator import DEMO_PASSWORD, seed_database
from ops.seed.history import add_history

READY = """return document.querySelectorAll('#overview-tiles .tile').length >= 5
  && !document.querySelector('#overview-tiles')?.innerText.includes('—')
  && document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2"""


def start(args: list[str], env: dict, url: str) -> subprocess.Popen:
    """A service as its own process, once its URL answers."""
    proc = subprocess.Popen([sys.executable, "-m", "ops.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(150):
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{args[0]} did not start")


def browser() -> webdriver.Chrome:
    """Headless Chromium at 1920×1080 with network timings recorded."""
    options = webdriver.ChromeOptions()
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--window-size=1920,1080", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def callback_times(driver: webdriver.Chrome) -> list[float]:
    """Server milliseconds of every Dash callback request in the performance log since last asked."""
    out = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.responseReceived":
            continue
        response = message["params"]["response"]
        if "_dash-update-component" in response["url"] and response.get("timing"):
            t = response["timing"]
            out.append(t["receiveHeadersEnd"] - t["sendEnd"])
    return out


def pct(values: list[float], q: float) -> float:
    """The q-quantile of the values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Run the benchmark and print its figures."""
    with tempfile.TemporaryDirectory(prefix="bench-cockpit-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg").start()
        migrate(pg.url)
        seed_database(pg.url, "demo")
        add_history(pg.url)
        api_port, ui_port = free_port(), free_port()
        env = {**os.environ, "COCKPIT_DATABASE_URL": pg.url, "COCKPIT_MQTT_URL": "mqtt://127.0.0.1:1",
               "API_SECRET_KEY": "c" * 48, "API_PORT": str(api_port), "DASHBOARD_PORT": str(ui_port),
               "DASHBOARD_API_URL": f"http://127.0.0.1:{api_port}", "DASHBOARD_REFRESH_MS": "3000"}
        api = start(["api"], env, f"http://127.0.0.1:{api_port}/healthz")
        ui = start(["dashboard"], env, f"http://127.0.0.1:{ui_port}/login")
        driver = browser()
        try:
            base = f"http://127.0.0.1:{ui_port}"
            driver.get(f"{base}/login")
            wait = WebDriverWait(driver, 30)
            wait.until(lambda d: d.find_elements(By.ID, "login-username"))
            driver.find_element(By.ID, "login-username").send_keys("admin")
            driver.find_element(By.ID, "login-password").send_keys(DEMO_PASSWORD)
            driver.find_element(By.ID, "login-submit").click()
            wait.until(lambda d: d.execute_script(READY))
            renders = []
            for _ in range(5):
                started = time.perf_counter()
                driver.get(f"{base}/")
                wait.until(lambda d: d.execute_script(READY))
                renders.append(time.perf_counter() - started)
            callback_times(driver)  # forget the page loads: what follows are live refreshes only
            time.sleep(30)
            refreshes = callback_times(driver)
            print("demo province, overview page, headless Chromium 1920×1080")
            print(f"first full render: median {statistics.median(renders):.2f}s, max {max(renders):.2f}s "
                  f"({len(renders)} page loads)")
            if refreshes:
                print(f"live refresh callbacks: {len(refreshes)} in 30 s; server time p50 {pct(refreshes, .5):.0f} ms, "
                      f"p95 {pct(refreshes, .95):.0f} ms, max {max(refreshes):.0f} ms")
        finally:
            driver.quit()
            for proc in (ui, api):
                proc.terminate()
                proc.wait(10)
            pg.stop("immediate")


WALL_PAGES, WALL_ROTATE_S, WALL_SAMPLE_S = ["/", "/equity", "/patrol"], 15, 300  # sampled on the first page


def rss_mib(pid: int) -> float:
    """Resident memory of a process, in MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wall_sample(driver: webdriver.Chrome, api: subprocess.Popen, ui: subprocess.Popen, started: float) -> dict:
    """The browser's heap after a forced GC, its DOM counters, the servers' resident memory, each time at the
    same point of the rotation: the first page back on screen and drawn."""
    WebDriverWait(driver, 120, poll_frequency=0.2).until(lambda d: d.execute_script(
        f"return ((document.getElementById('wall-page') || {{}}).innerText || '').endsWith(' · 1/{len(WALL_PAGES)}')") and
        d.execute_script(READY))
    driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    heap = driver.execute_cdp_cmd("Runtime.getHeapUsage", {})
    dom = driver.execute_cdp_cmd("Memory.getDOMCounters", {})
    return {"minute": (time.monotonic() - started) / 60, "heap": heap["usedSize"] / 2**20,
            "js_heap": driver.execute_script("return performance.memory.usedJSHeapSize") / 2**20,
            "nodes": dom["nodes"], "listeners": dom["jsEventListeners"], "api": rss_mib(api.pid),
            "ui": rss_mib(ui.pid), "page": driver.execute_script(
                "return (document.getElementById('wall-page') || {}).innerText || ''")}


def wall_browser() -> webdriver.Chrome:
    """Headless Chromium at 1920×1080 with exact heap figures and no network log kept for the driver."""
    options = webdriver.ChromeOptions()
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--window-size=1920,1080", "--disable-dev-shm-usage", "--enable-precise-memory-info"):
        options.add_argument(arg)
    options.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wall(minutes: float) -> None:
    """A wall page left running `minutes`: memory of the browser and of both servers at start and end."""
    with tempfile.TemporaryDirectory(prefix="bench-wall-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg").start()
        migrate(pg.url)
        seed_database(pg.url, "demo")
        add_history(pg.url)
        api_port, ui_port = free_port(), free_port()
        env = {**os.environ, "COCKPIT_DATABASE_URL": pg.url, "COCKPIT_MQTT_URL": "mqtt://127.0.0.1:1",
               "API_SECRET_KEY": "c" * 48, "API_PORT": str(api_port), "DASHBOARD_PORT": str(ui_port),
               "DASHBOARD_API_URL": f"http://127.0.0.1:{api_port}"}
        env.pop("DASHBOARD_REFRESH_MS", None)  # the default a real wall runs with
        api = start(["api"], env, f"http://127.0.0.1:{api_port}/healthz")
        ui = start(["dashboard"], env, f"http://127.0.0.1:{ui_port}/login")
        driver = wall_browser()
        try:
            base = f"http://127.0.0.1:{api_port}"
            token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": DEMO_PASSWORD})
            link = httpx.post(f"{base}/api/v1/admin/display-links", headers={
                "Authorization": f"Bearer {token.json()['access_token']}"}, json={
                "label": "bench", "scope_level": "province", "scope_code": "420000", "pages": WALL_PAGES,
                "rotate_s": WALL_ROTATE_S}).json()
            driver.execute_cdp_cmd("HeapProfiler.enable", {})
            driver.get(f"http://127.0.0.1:{ui_port}{link['wall_path']}")
            WebDriverWait(driver, 60).until(lambda d: d.execute_script(READY))
            time.sleep(len(WALL_PAGES) * WALL_ROTATE_S)  # one whole turn before the first sample
            started = time.monotonic()
            samples = [wall_sample(driver, api, ui, started)]
            while (time.monotonic() - started) < minutes * 60:
                time.sleep(min(WALL_SAMPLE_S, max(1.0, minutes * 60 - (time.monotonic() - started))))
                samples.append(wall_sample(driver, api, ui, started))
            print(f"demo province wall, pages {' '.join(WALL_PAGES)} every {WALL_ROTATE_S} s, headless Chromium "
                  f"1920×1080, cockpit refresh default; {minutes:g} min after one whole turn")
            print(" minute  heap MiB  performance.memory MiB  DOM nodes  listeners  API RSS MiB  cockpit RSS MiB  page")
            for s in samples:
                print(f"{s['minute']:7.1f}  {s['heap']:8.1f}  {s['js_heap']:22.1f}  {s['nodes']:9d}  {s['listeners']:9d}"
                      f"  {s['api']:11.1f}  {s['ui']:15.1f}  {s['page']}")
            first, last = samples[0], samples[-1]
            print(f"change start → end: heap {last['heap'] - first['heap']:+.1f} MiB, DOM nodes "
                  f"{last['nodes'] - first['nodes']:+d}, API RSS {last['api'] - first['api']:+.1f} MiB, cockpit RSS "
                  f"{last['ui'] - first['ui']:+.1f} MiB")
        finally:
            driver.quit()
            for proc in (ui, api):
                proc.terminate()
                proc.wait(10)
            pg.stop("immediate")


# The map page (`--map`): drawn when the map's graph holds the figure of the scope asked for.
MAP_READY = {"province": "document.querySelectorAll('#map-graph path.choroplethlocation').length >= 17",
             "county": "document.querySelectorAll('#map-graph .scattergeo path.point').length >= 12"}
MAP_SCOPES = {"province": "420000", "county": "421303"}


def map_callback_bytes(driver: webdriver.Chrome) -> list[int]:
    """Bytes received for each Dash callback that drew the map (its request names map-graph), since last asked."""
    asked, received = set(), {}
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message["params"]
        if message["method"] == "Network.requestWillBeSent" and "_dash-update-component" in params["request"]["url"] \
                and '"map-graph"' in params["request"].get("postData", ""):
            asked.add(params["requestId"])
        elif message["method"] == "Network.loadingFinished":
            received[params["requestId"]] = int(params["encodedDataLength"])
    return [received[r] for r in asked if r in received]


def map_render() -> None:
    """First render of the map page at province and county level: time to the map drawn, and its bytes."""
    with tempfile.TemporaryDirectory(prefix="bench-map-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg").start()
        migrate(pg.url)
        seed_database(pg.url, "demo")
        add_history(pg.url)
        api_port, ui_port = free_port(), free_port()
        env = {**os.environ, "COCKPIT_DATABASE_URL": pg.url, "COCKPIT_MQTT_URL": "mqtt://127.0.0.1:1",
               "API_SECRET_KEY": "c" * 48, "API_PORT": str(api_port), "DASHBOARD_PORT": str(ui_port),
               "DASHBOARD_API_URL": f"http://127.0.0.1:{api_port}", "DASHBOARD_REFRESH_MS": "3000"}
        api = start(["api"], env, f"http://127.0.0.1:{api_port}/healthz")
        ui = start(["dashboard"], env, f"http://127.0.0.1:{ui_port}/login")
        driver = browser()
        try:
            token = httpx.post(f"http://127.0.0.1:{api_port}/api/v1/auth/token", timeout=60,
                               data={"username": "admin", "password": DEMO_PASSWORD}).json()["access_token"]
            base = f"http://127.0.0.1:{ui_port}"
            driver.get(f"{base}/login")
            wait = WebDriverWait(driver, 60, poll_frequency=0.05)
            wait.until(lambda d: d.find_elements(By.ID, "login-username"))
            driver.find_element(By.ID, "login-username").send_keys("admin")
            driver.find_element(By.ID, "login-password").send_keys(DEMO_PASSWORD)
            driver.find_element(By.ID, "login-submit").click()
            wait.until(lambda d: d.execute_script("return window.location.pathname") == "/")
            print("demo province, map page, headless Chromium 1920×1080")
            for level, code in MAP_SCOPES.items():
                answer = httpx.get(f"http://127.0.0.1:{api_port}/api/v1/scopes/{level}/{code}/map", timeout=60,
                                   headers={"Authorization": f"Bearer {token}"})
                renders, drawn_bytes = [], []
                for _ in range(6):  # the first load also simplifies the boundaries (once per API process)
                    map_callback_bytes(driver)
                    started = time.perf_counter()
                    driver.get(f"{base}/map?level={level}&code={code}")
                    wait.until(lambda d, level=level: d.execute_script(f"return {MAP_READY[level]}"))
                    renders.append(time.perf_counter() - started)
                    drawn_bytes += map_callback_bytes(driver)
                time.sleep(10)  # live refreshes: the areas are re-coloured, the boundaries stay in the browser
                refreshes = map_callback_bytes(driver)
                print(f"{level} {code}: first render (the API's first, cold) {renders[0]:.2f}s; then median "
                      f"{statistics.median(renders[1:]):.2f}s, max {max(renders[1:]):.2f}s ({len(renders) - 1} page "
                      f"loads); GET …/map {len(answer.content):,} bytes; map callback to the browser "
                      f"{max(drawn_bytes):,} bytes; live refresh {len(refreshes)} in 10 s, "
                      f"{statistics.median(refreshes) if refreshes else 0:,.0f} bytes each (median)")
            overview = []  # a yardstick on a shared machine: the overview's first full render, measured alike
            for _ in range(5):
                started = time.perf_counter()
                driver.get(f"{base}/")
                wait.until(lambda d: d.execute_script(READY))
                overview.append(time.perf_counter() - started)
            print(f"for comparison, the overview at the same time: median {statistics.median(overview):.2f}s, "
                  f"max {max(overview):.2f}s (5 page loads)")
        finally:
            driver.quit()
            for proc in (ui, api):
                proc.terminate()
                proc.wait(10)
            pg.stop("immediate")


if __name__ == "__main__":
    if "--wall-minutes" in sys.argv:
        wall(float(sys.argv[sys.argv.index("--wall-minutes") + 1]))
    elif "--map" in sys.argv:
        map_render()
    else:
        main()
