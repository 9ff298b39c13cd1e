"""scripts/visdom_server.py refuses a port outside 1..65535 in one line, before starting anything (a busy
port, through the real launcher: tests/viz/test_visualizer.py)."""
import pytest

from scripts.visdom_server import build_parser


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_a_port_outside_1_65535_is_refused(port, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--port", port])
    assert f"argument --port: {port} is not a TCP port: pick one in 1..65535" in capsys.readouterr().err
