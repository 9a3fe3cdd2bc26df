"""The app on the bundled models in headless Chromium at 1440x900, for the scripts that take screenshots."""

from __future__ import annotations

import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from selenium import webdriver

from explorer.app import create_app

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def app_in_chromium(port: int) -> Iterator[Any]:
    """Serve the app on 127.0.0.1:``port`` (a fresh cache) and yield a headless Chromium driver whose page area
    is exactly 1440 x 900."""
    with tempfile.TemporaryDirectory() as cache:
        app = create_app([ROOT / "sample_models"], Path(cache))
        threading.Thread(target=lambda: app.run(host="127.0.0.1", port=port), daemon=True).start()
        options = webdriver.ChromeOptions()
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1440,900", "--hide-scrollbars"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 1440, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        try:
            time.sleep(2)  # the server thread starts listening
            yield driver
        finally:
            driver.quit()


def wait_for(driver: Any, script: str, what: str, *args: Any) -> None:
    """Poll ``script`` (with ``args``) until it returns true; exit with an error naming ``what`` after 300 s."""
    end = time.time() + 300
    while not driver.execute_script(script, *args):
        if time.time() > end:
            raise SystemExit(f"error: {what} was not drawn within 300 s")
        time.sleep(0.2)
