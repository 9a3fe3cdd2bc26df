"""Take the README's token graph screenshot: the app on the bundled models, headless Chromium at
1440x900, a KJV prompt at its fifth step with one node selected.

Usage: python scripts/screenshot_graph.py [OUTPUT] [--port 8071]   (default assets/screenshot-graph.png)
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from selenium import webdriver

from explorer.app import create_app

ROOT = Path(__file__).resolve().parent.parent
LINK = "/graph#m=kjv-final&p=In%20the%20beginning%20God%20created&n=10&s=4&node=393"
DRAWN = ("var gd = document.querySelector('#tg-graph .js-plotly-plot');"
         "return !!(gd && gd._fullData && gd._fullData.length > 3 && gd._fullData[3].x.length && gd.drawnStep && gd.drawnStep.step === 4);")


def main() -> None:
    """Serve the app, open the link, wait until the step and the selection are drawn, save the picture."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=ROOT / "assets" / "screenshot-graph.png")
    parser.add_argument("--port", type=int, default=8071)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        app = create_app([ROOT / "sample_models"], Path(cache))
        threading.Thread(target=lambda: app.run(host="127.0.0.1", port=args.port), daemon=True).start()
        options = webdriver.ChromeOptions()
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1440,900", "--hide-scrollbars"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # the page area itself is 1440 x 900
                               {"width": 1440, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        try:
            time.sleep(2)  # the server thread starts listening
            driver.get(f"http://127.0.0.1:{args.port}{LINK}")
            end = time.time() + 300
            while not driver.execute_script(DRAWN):
                if time.time() > end:
                    raise SystemExit("error: the graph was not drawn within 300 s")
                time.sleep(0.2)
            time.sleep(1.0)  # plotly finishes its WebGL frame
            driver.execute_script("var c = document.querySelector('#tg-prompt').closest('.controls');"
                                  "window.scrollTo(0, c.getBoundingClientRect().top + window.scrollY - 8);")
            time.sleep(0.5)
            driver.save_screenshot(str(args.output))
        finally:
            driver.quit()
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
