"""`brillm explore [MODEL_DIR ...]`: start the explorer on 127.0.0.1 with the given checkpoints.

`brillm explore` runs ``main(argv)`` here through the entry point this package declares
(group ``brillm.commands`` in pyproject.toml), importing this module only then, so the
core's commands never import Dash; ``python -m explorer.cli`` runs it too.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path

from werkzeug.serving import make_server

from .cache import CacheDirError, default_cache_dir

SAMPLE_MODELS = Path(__file__).resolve().parents[1] / "sample_models"


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's arguments; its handler is set as ``handler``."""
    parser.add_argument("model_dirs", nargs="*", type=Path, metavar="MODEL_DIR",
                        help=f"a checkpoint directory or a folder of them (default: {SAMPLE_MODELS})")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default 127.0.0.1; anything else exposes the app to the network)")
    parser.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="where traces, layouts and background jobs are cached; it must be yours and writable by "
                             "no one else (default $XDG_CACHE_HOME/brillm-explorer, else ~/.cache/brillm-explorer)")
    parser.add_argument("--debug", action="store_true", help="Dash debug mode (reloader, error overlay; loopback only)")
    parser.set_defaults(handler=run_explore)


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def run_explore(args: argparse.Namespace) -> int:
    """Check the model folders, build the app and serve it until interrupted."""
    model_dirs = args.model_dirs or [SAMPLE_MODELS]
    if args.debug and not is_loopback(args.host):
        print("error: --debug runs an interactive debugger; it is allowed on a loopback --host only", file=sys.stderr)
        return 2
    missing = [str(p) for p in model_dirs if not Path(p).is_dir()]
    if missing:
        print(f"error: not a directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    taken = port_problem(args.host, args.port)
    if taken:
        print(f"error: {taken}", file=sys.stderr)
        return 1
    from .app import create_app, freeze_startup_heap  # Dash is imported only when the command runs

    try:
        app = create_app(model_dirs, args.cache_dir or default_cache_dir())
    except CacheDirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    freeze_startup_heap()
    names = app.server.config.get("BRILLM_MODELS", [])
    if not names:
        print(f"warning: no checkpoint found in {', '.join(map(str, model_dirs))}; the app will say so",
              file=sys.stderr)
    if not is_loopback(args.host):
        print(f"warning: listening on {args.host}, not loopback: anyone who can reach this machine can use the "
              "app (it has no login); use 127.0.0.1 unless that is what you want", file=sys.stderr)
    if args.debug:  # Dash's development tools and reloader; they print their own start lines
        app.run(host=args.host, port=args.port, debug=True)
        return 0
    server = make_server(args.host, args.port, app.server, threaded=True)  # bound before the start line
    print(f"BriLLM Explorer on http://{args.host}:{args.port}/ with {len(names)} checkpoint(s): {', '.join(names)}",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def port_problem(host: str, port: int) -> str | None:
    """Why the app could not listen on host:port (taken, not an address of this machine), or None."""
    try:
        family = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
            probe.bind((host.strip("[]"), port))
    except OSError as exc:
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Run `explore` on its own: the same arguments as `brillm explore`."""
    parser = argparse.ArgumentParser(prog="brillm explore", description=__doc__.splitlines()[0])
    configure(parser)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
