"""scripts/visdom_server.py refuses a port it cannot serve in one line, before starting anything
(the busy port through the real launcher: tests/viz/test_visualizer.py)."""
import socket

import pytest

from pix2pix_tr.errors import UserError
from scripts.visdom_server import check_port


@pytest.mark.parametrize("port", [99999, 0, -1])
def test_a_port_outside_1_65535_is_refused(port):
    with pytest.raises(UserError, match=rf"--port {port} is not a TCP port: pick one in 1\.\.65535"):
        check_port("127.0.0.1", port)


def test_a_busy_port_is_named():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(UserError, match=f"cannot listen on 127.0.0.1:{port}.*pick another --port"):
            check_port("127.0.0.1", port)
