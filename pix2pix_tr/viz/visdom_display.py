"""A visdom client that never stops training.

Without visdom or a server, ONE warning names the command that starts one (`python
scripts/visdom_server.py`: loopback only, no CDN download) and training goes on; the server is looked
for again every `reconnect_interval` seconds. No call waits long: a short socket check precedes the
client, whose requests time out too.
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
CONNECT_TIMEOUT, REQUEST_TIMEOUT = 1.0, 10.0


class VisdomDisplay:
    """Warn once, skip while there is no server, retry later."""

    def __init__(self, server, port, env, *, log=print, reconnect_interval=60.0):
        parsed = urllib.parse.urlparse(server if "://" in server else f"http://{server}")
        self.server, self.host, self.port = f"{parsed.scheme}://{parsed.hostname}", parsed.hostname, int(port)
        self.env, self.log, self.reconnect_interval = env, log, reconnect_interval
        self.client, self._warned, self._last_attempt = None, False, None
        if visdom is None:
            self._warn("visdom is not installed (pip install visdom==0.2.4)")
            return
        self._connect()

    def _warn(self, reason):
        if not self._warned:
            self._warned = True
            self.log(f"warning: {reason}; the live view is off, training goes on (loss logs and "
                     f"HTML are still written). Start a server with: "
                     f"python scripts/visdom_server.py --port {self.port}")

    def _connect(self):
        self._last_attempt = time.monotonic()
        address = f"{self.server}:{self.port}"
        try:                                               # a short socket check first: never hang
            socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT).close()
        except OSError:
            self._warn(f"no visdom server answers at {address}")
            return False
        try:
            with _quiet_visdom_logger():
                client = _TimeoutVisdom(server=self.server, port=self.port, env=self.env,
                                        raise_exceptions=True, use_incoming_socket=False)
            is_visdom = client.win_exists("") is not None  # "true"/"false" from visdom only
        except Exception as err:  # the server went away meanwhile
            self._warn(f"the visdom server at {address} did not answer ({err})")
            return False
        if not is_visdom:
            self._warn(f"the server at {address} does not answer as visdom does")
            return False
        self.client = client
        if self._warned:
            self.log(f"visdom: connected to {address}/env/{urllib.parse.quote(self.env)}")
        return True

    def send(self, method, *args, **kwargs):
        """Call `client.<method>(...)`; on any failure drop the client and retry later."""
        if visdom is None:
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
    """Hide visdom's chatter at client setup ("Setting up a new session...")."""
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

        def _handle_post(self, url, data=None):  # visdom's documented override point
            return self.session.post(url, data={} if data is None else data, timeout=REQUEST_TIMEOUT).text
