"""Cockpit benchmark: first full render of the overview, and server time of each live refresh.

    python -m bench.cockpit

Starts its own PostgreSQL with the demo province and its simulated past, the API and
the cockpit as separate processes, and headless Chromium. First render: from
navigation to every tile and chart of the overview filled in, logged in, 5 page loads.
Live refresh: for 30 s of refreshes, the server time of every Dash callback request,
from Chromium's own network timings (request sent → response headers received).
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


if __name__ == "__main__":
    main()
