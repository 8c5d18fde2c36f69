"""A real browser opens `evo dashboard` on a mirrored run: the run's study lists its trials, a diagram loads.

Needs headless Chromium and its driver (Debian: ``apt-get install chromium chromium-driver``, as
``make browser`` does); the test installs them when missing and skips only when that is impossible.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from evo.config import EvoConfig
from evo.mirror import OptunaMirror
from evo.runner import run_evolution
from evo.tasks import Objective

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _browser() -> tuple[str, str] | None:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@pytest.fixture(scope="module")
def chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver, installed with apt-get when missing."""
    pytest.importorskip("selenium", reason="selenium (the dev extra) is not installed")
    if _browser() is None:
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            pytest.skip("headless Chromium is missing and cannot be installed here (needs apt-get as root)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=300)
        done = subprocess.run(["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"], env=env,
                              capture_output=True, text=True, timeout=600)
        if _browser() is None:
            pytest.skip(f"headless Chromium could not be installed: {done.stderr.strip()[-300:]}")
    found = _browser()
    assert found is not None
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dashboard(tmp_path: Path, xor_config: EvoConfig) -> Iterator[tuple[str, int]]:
    """`evo dashboard` serving a store made by a tiny mirrored run; yields (base URL, individuals mirrored)."""
    url, artifacts = f"sqlite:///{tmp_path}/evo.db", tmp_path / "artifacts"
    mirror = OptunaMirror(url, "xor-demo", [Objective("fitness")], run_dir=tmp_path / "run", artifacts=artifacts)
    result = run_evolution(xor_config, run_dir=tmp_path / "run", reporters=[mirror])
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "evo", "dashboard", "--storage", url, "--port", str(port),
                             "--artifacts", str(artifacts)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base, proc)
        yield base, len(result.individuals)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait_until_serving(base: str, proc: subprocess.Popen[str], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"evo dashboard exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            urllib.request.urlopen(f"{base}/api/studies", timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"evo dashboard did not answer at {base} within {timeout_s} s")


def test_dashboard_shows_run_and_diagram(chromium: tuple[str, str], dashboard: tuple[str, int], tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, individuals = dashboard
    options = webdriver.ChromeOptions()
    options.binary_location = chromium[0]
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"]:
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(chromium[1]), options=options)
    try:
        wait = WebDriverWait(browser, 60)
        body = lambda: browser.find_element(By.TAG_NAME, "body").text  # noqa: E731
        browser.get(f"{base}/dashboard/")
        wait.until(lambda _: "run:xor-demo" in body())

        browser.get(f"{base}/dashboard/studies/1/trials")
        wait.until(lambda _: f"{individuals} Trials" in body() and "individual_0.svg" in body())
        assert all(f"Trial {i}" in body() for i in range(individuals))
        assert "architecture" in body() and "lineage" in body()

        image = wait.until(lambda b: next(iter(b.find_elements(By.CSS_SELECTOR, "img[src*='/artifacts/']")), None))
        wait.until(lambda b: b.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image))
    finally:
        browser.quit()
