"""Start the visdom server for the live training view: loopback only, no CDN download (unlike `python -m
visdom.server`, it builds visdom 0.2.4's tornado application itself, from the assets that
scripts/install_visdom_assets.py installs; docs/viewer.md says why).

    python scripts/visdom_server.py                 # http://127.0.0.1:8097 (visdom's port)
    python scripts/visdom_server.py --port 8098 --hostname 0.0.0.0   # reachable from other machines: opt-in
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import logging  # noqa: E402

from pix2pix_tr.errors import UserError, run_cli  # noqa: E402
from pix2pix_tr.viz.visdom_display import DEFAULT_PORT  # noqa: E402
from scripts.install_visdom_assets import missing_assets, visdom_static_dir  # noqa: E402

DEFAULT_ENV_PATH = os.path.join(os.path.expanduser("~"), ".visdom")


def tcp_port(text):
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port: pick one in 1..65535 (default {DEFAULT_PORT})")
    return port


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=tcp_port, default=DEFAULT_PORT,
                        help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("--hostname", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--env_path", default=DEFAULT_ENV_PATH,
                        help="where visdom saves envs when asked to (default ~/.visdom)")
    parser.add_argument("--logging_level", default="WARNING",
                        help="tornado/visdom log level (default WARNING)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    missing = missing_assets(visdom_static_dir())
    if missing:
        raise UserError(f"visdom's web assets are not installed ({len(missing)} files missing, e.g. "
                        f"{missing[0]}): run python scripts/install_visdom_assets.py (needs npm)")
    logging.basicConfig(level=args.logging_level.upper())
    import tornado
    from tornado import ioloop
    from visdom.server.app import Application

    if tornado.version_info[:2] >= (6, 6):
        raise UserError(f"tornado {tornado.version} makes visdom 0.2.4 answer its page with HTTP 403 "
                        "(a blank viewer): pip install 'tornado>=6.4,<6.6' (as requirements.txt pins)")
    os.makedirs(args.env_path, exist_ok=True)
    app = Application(port=args.port, base_url="", env_path=args.env_path)
    try:
        app.listen(args.port, address=args.hostname, max_buffer_size=1024**3)
    except OSError as err:
        raise UserError(f"cannot listen on {args.hostname}:{args.port} ({err.strerror}): pick another --port, "
                        "or stop the server that holds it (another visdom server?)") from None
    shown_host = "127.0.0.1" if args.hostname in ("", "0.0.0.0", "::") else args.hostname
    print(f"visdom server listening on {args.hostname}:{args.port}: "
          f"open http://{shown_host}:{args.port}  (Ctrl-C stops it)", flush=True)
    try:
        ioloop.IOLoop.current().start()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
