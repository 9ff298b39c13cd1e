"""A visdom client that never stops training.

If visdom is not importable or no server answers, ONE warning names the command that starts a server
(`python scripts/visdom_server.py`: loopback only, no CDN download) and training goes on; the server
is looked for again every `reconnect_interval` seconds, so starting it later works. No call waits
long: a socket check with a short timeout precedes the visdom client, whose requests time out too.
"""
import contextlib
import logging
import socket
import time
import urllib.parse

try:  # optional: without visdom, the logs and the HTML page still work
    import visdom
except ImportError:
    visdom = None

DEFAULT_PORT = 8097                      # visdom's and pix2pix's --display_port
SERVER_COMMAND = "python scripts/visdom_server.py --port {port}"


class VisdomDisplay:
    """A visdom client that never stops training: warn once, skip while no server, retry later."""

    def __init__(self, server, port, env, *, log=print, reconnect_interval=60.0,
                 connect_timeout=1.0, request_timeout=10.0):
        parsed = urllib.parse.urlparse(server if "://" in server else f"http://{server}")
        self.server = f"{parsed.scheme}://{parsed.hostname}"
        self.host = parsed.hostname
        self.port = int(port)
        self.env = env
        self.log = log
        self.reconnect_interval = reconnect_interval
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.client = None
        self._warned = False
        self._last_attempt = None
        self._visdom_missing = visdom is None
        if self._visdom_missing:
            self._warn("visdom is not installed (pip install visdom==0.2.4)")
            return
        self._connect()

    @property
    def url(self):
        return f"{self.server}:{self.port}/env/{urllib.parse.quote(self.env)}"

    def _warn(self, reason):
        if not self._warned:
            self._warned = True
            self.log(f"warning: {reason}; the live view is off, training goes on (loss logs and "
                     f"HTML are still written). Start a server with: "
                     f"{SERVER_COMMAND.format(port=self.port)}")

    def _server_listens(self):
        try:
            with socket.create_connection((self.host, self.port), timeout=self.connect_timeout):
                return True
        except OSError:
            return False

    def _connect(self):
        self._last_attempt = time.monotonic()
        if not self._server_listens():
            self._warn(f"no visdom server answers at {self.server}:{self.port}")
            return False
        try:
            with _quiet_visdom_logger():  # "Setting up a new session...", "Without the incoming socket..."
                self.client = _TimeoutVisdom(self.request_timeout, server=self.server, port=self.port,
                                             env=self.env, raise_exceptions=True,
                                             use_incoming_socket=False)
            is_visdom = self.client.win_exists("") is not None  # "true"/"false" from visdom only
        except Exception as err:  # the server went away meanwhile
            self.client, is_visdom = None, False
            self._warn(f"the visdom server at {self.server}:{self.port} did not answer ({err})")
            return False
        if not is_visdom:
            self.client = None
            self._warn(f"the server at {self.server}:{self.port} does not answer as visdom does")
            return False
        if self._warned:
            self.log(f"visdom: connected to {self.url}")
        return True

    def send(self, method, *args, **kwargs):
        """Call `client.<method>(...)`; on any failure drop the client and retry later."""
        if self._visdom_missing:
            return False
        if self.client is None:
            if time.monotonic() - self._last_attempt < self.reconnect_interval or not self._connect():
                return False
        try:
            getattr(self.client, method)(*args, **kwargs)
            return True
        except Exception as err:
            self.client = None
            self._warn(f"the visdom server at {self.server}:{self.port} stopped answering ({err})")
            return False


@contextlib.contextmanager
def _quiet_visdom_logger():
    """Hide visdom's chatter at client setup (warnings about features we do not use)."""
    visdom_logger = logging.getLogger("visdom")
    level = visdom_logger.level
    visdom_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        visdom_logger.setLevel(level)


if visdom is not None:
    class _TimeoutVisdom(visdom.Visdom):
        """visdom.Visdom whose HTTP requests time out instead of hanging on a stuck server."""

        def __init__(self, timeout, **kwargs):
            self._request_timeout = timeout
            super().__init__(**kwargs)

        def _handle_post(self, url, data=None):  # visdom's documented override point
            response = self.session.post(url, data={} if data is None else data,
                                         timeout=self._request_timeout)
            return response.text
