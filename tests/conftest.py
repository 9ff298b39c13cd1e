"""The suite runs on two pytest-xdist workers (pytest.ini), one per core of the 2-core machine it is sized
for: each worker, and the train.py / reproduce.py it starts, uses one torch thread, so that two workers do
not oversubscribe the cores. The slow tests come first, so that a worker that runs out of work steals the
short ones (--dist worksteal) and neither ends alone with a long one."""
import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
