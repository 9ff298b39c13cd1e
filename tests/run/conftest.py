import pytest


@pytest.fixture(scope="module")
def straight_run(request, tmp_path_factory, dataroot):
    """The test module's run (its `train` and `run_args`) without interruption: what a resumed run must equal."""
    ckpt = tmp_path_factory.mktemp("straight")
    request.module.train.main(request.module.run_args(dataroot, ckpt))
    return ckpt / "run"
