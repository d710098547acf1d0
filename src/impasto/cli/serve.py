"""``impasto serve``: the studio, a local web app (the ``studio`` extra: FastAPI + uvicorn).

Binds 127.0.0.1 by default and prints the address; another ``--host`` needs ``--token`` (or the
environment variable IMPASTO_STUDIO_TOKEN), which every request must then carry.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import os
import socket
import sys
import threading
import webbrowser
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from .args import positive_int
from .terminal import Terminal

TOKEN_ENV = "IMPASTO_STUDIO_TOKEN"
DEFAULT_PORT = 8765
NEEDS = ("fastapi", "uvicorn", "multipart")


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("impasto")) / "studio"


def add_parser(commands, argv: Sequence[str], selected: bool) -> None:
    serve = commands.add_parser(
        "serve",
        help="the studio: stylise, watch, compare and keep results in a web page",
        description="Start impasto studio, a web app on this machine: upload a photo and "
        "paintings (or use the bundled pair), pick a method and its settings, watch the image "
        "form, compare and keep results. Jobs (photos, videos, trainings) queue and run in a "
        "separate worker process. Needs: pip install 'impasto[studio]'.",
    )
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on; anything but loopback (this machine only) needs "
                       "--token (default: 127.0.0.1)")  # fmt: skip
    serve.add_argument("--port", type=positive_int, default=DEFAULT_PORT,
                       help=f"port (default: {DEFAULT_PORT})")  # fmt: skip
    serve.add_argument("--token", default=None,
                       help="a secret every request must carry; required with a --host other than "
                       f"loopback (default: ${TOKEN_ENV})")  # fmt: skip
    serve.add_argument("--data-dir", default=None, metavar="FOLDER",
                       help="where uploads, results and the job database live (default: impasto's "
                       "user data folder + /studio)")  # fmt: skip
    serve.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="worker processes running jobs side by side (default: 1)",
    )
    serve.add_argument("--max-upload-mb", type=positive_int, default=512, metavar="MB",
                       help="largest upload in megabytes (default: 512)")  # fmt: skip
    serve.add_argument("--max-pixels", type=positive_int, default=None, metavar="N",
                       help="largest image (or video frame) in pixels "
                       "(default: impasto's pixel cap)")  # fmt: skip
    serve.add_argument(
        "--no-open",
        action="store_true",
        help="do not open a browser (one opens only when run in a terminal)",
    )
    serve.set_defaults(handler=run)


def run(args: argparse.Namespace, terminal: Terminal) -> int:
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(f"impasto serve needs {', '.join(missing)}: pip install 'impasto[studio]'")
    token = args.token or os.environ.get(TOKEN_ENV) or None
    loopback = _is_loopback(args.host)
    if not loopback and not token:
        raise InputError(
            f"--host {args.host} lets other machines in: give --token SECRET (or set "
            f"{TOKEN_ENV}); every request must then carry it"
        )
    data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    _check_data_dir(data_dir)
    _check_port(args.host, args.port)

    import uvicorn

    from ..studio.app import Settings, create_app

    settings = Settings(data_dir=data_dir, token=token, workers=args.workers,
                        max_upload_bytes=args.max_upload_mb * 1024 * 1024,
                        max_pixels=args.max_pixels, check_host=loopback and not token)  # fmt: skip
    app = create_app(settings)
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown_host}:{args.port}/" + (f"?token={token}" if token else "")
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                            access_log=False, timeout_graceful_shutdown=3)  # fmt: skip
    server = uvicorn.Server(config)
    terminal.line(f"impasto studio: {url}")
    terminal.line(f"data in {data_dir}; {args.workers} worker(s); Ctrl-C stops it")
    if not args.no_open and sys.stdout.isatty():
        threading.Timer(1.5, webbrowser.open, (url,)).start()
    server.run()
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_data_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"--data-dir {folder}: cannot create it ({error.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise InputError(f"--data-dir {folder}: not writable")


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as error:
            raise InputError(f"cannot listen on {host}:{port}: {error.strerror} (choose "
                             "another with --port)") from None  # fmt: skip
