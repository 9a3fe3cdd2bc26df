"""Take the Signal path's screenshots: the app on the bundled models, headless Chromium at 1440x900.

  landing   the page a bare link opens (kjv-final, its example and its trace), at its first step
  forced    a teacher-forced step
  rerouted  a re-routed step (the path before re-routing shown above the bars)
  ribbon    a late step, its memory ribbon in the window
  readme    the whole page at the first generated steps of the example (the README's picture)

Usage: python scripts/screenshot_signal_path.py [OUTPUT_DIR] [--port 8072] [--readme]
(default: the current directory; --readme also copies the readme shot to assets/screenshot.png)
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from urllib.parse import quote

from app_in_chromium import ROOT, app_in_chromium, wait_for
from explorer.pages.signal_path import EXAMPLE, FLAGSHIP

PROMPT = quote(EXAMPLE)
SHOTS = {  # name -> (link, the step whose chart must be drawn, an element to scroll to the top)
    "landing": ("/", 0, None),
    "forced": (f"/#m={FLAGSHIP}&p={PROMPT}&s=4", 4, "sp-chips"),
    "rerouted": (f"/#m={FLAGSHIP}&p={PROMPT}&r=7:16&s=7", 7, "sp-chips"),
    "ribbon": (f"/#m={FLAGSHIP}&p={PROMPT}&n=24&s=20", 20, "sp-chips"),
    "readme": (f"/#m={FLAGSHIP}&p={PROMPT}&s=8", 8, None),
}
DRAWN = ("var gd = document.querySelector('#sp-energy .js-plotly-plot'), title = gd && gd.layout && gd.layout.title;"
         "return !!title && String(title.text).indexOf('Step ' + arguments[0] + ':') === 0;")


def main() -> None:
    """Serve the app, open each link, wait until its step is drawn, save the pictures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=Path.cwd())
    parser.add_argument("--port", type=int, default=8072)
    parser.add_argument("--readme", action="store_true", help="also copy the readme shot to assets/screenshot.png")
    args = parser.parse_args()
    with app_in_chromium(args.port) as driver:
        for name, (link, step, top) in SHOTS.items():
            driver.get("about:blank")
            driver.get(f"http://127.0.0.1:{args.port}{link}")
            wait_for(driver, DRAWN, f"step {step} of {link}", step)
            if top:
                driver.execute_script("var top = document.getElementById(arguments[0]).getBoundingClientRect().top;"
                                      "window.scrollTo(0, top + window.scrollY - 8);", top)
            time.sleep(1.0)  # plotly's last frame
            path = args.output / f"signal-path-{name}.png"
            driver.save_screenshot(str(path))
            print(f"saved {path}")
    if args.readme:
        shutil.copyfile(args.output / "signal-path-readme.png", ROOT / "assets" / "screenshot.png")
        print(f"copied the readme shot to {ROOT / 'assets' / 'screenshot.png'}")


if __name__ == "__main__":
    main()
