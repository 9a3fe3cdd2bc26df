"""Take the README's token graph screenshot: the app on the bundled models, headless Chromium at
1440x900, a KJV prompt at its fifth step with one node selected.

Usage: python scripts/screenshot_graph.py [OUTPUT] [--port 8071]   (default assets/screenshot-graph.png)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from app_in_chromium import ROOT, app_in_chromium, wait_for

LINK = "/graph#m=kjv-final&p=In%20the%20beginning%20God%20created&n=10&s=4&node=393"
DRAWN = ("var gd = document.querySelector('#tg-graph .js-plotly-plot');"
         "return !!(gd && gd._fullData && gd._fullData.length > 3 && gd._fullData[3].x.length && gd.drawnStep && gd.drawnStep.step === 4);")


def main() -> None:
    """Serve the app, open the link, wait until the step and the selection are drawn, save the picture."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=ROOT / "assets" / "screenshot-graph.png")
    parser.add_argument("--port", type=int, default=8071)
    args = parser.parse_args()
    with app_in_chromium(args.port) as driver:
        driver.get(f"http://127.0.0.1:{args.port}{LINK}")
        wait_for(driver, DRAWN, "the graph")
        time.sleep(1.0)  # plotly finishes its WebGL frame
        driver.execute_script("var c = document.querySelector('#tg-prompt').closest('.controls');"
                              "window.scrollTo(0, c.getBoundingClientRect().top + window.scrollY - 8);")
        time.sleep(0.5)
        driver.save_screenshot(str(args.output))
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
