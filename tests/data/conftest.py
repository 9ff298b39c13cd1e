import pytest


@pytest.fixture
def interrupt(monkeypatch):
    """interrupt(module, name, n): `module.name` (a preparer's per-job function) raises KeyboardInterrupt
    on its n-th call, as Ctrl-C would; returns a function that puts the real one back."""
    def install(module, name, n):
        real, calls = getattr(module, name), []

        def dies(job):
            calls.append(job)
            if len(calls) == n:
                raise KeyboardInterrupt
            return real(job)

        monkeypatch.setattr(module, name, dies)
        return lambda: monkeypatch.setattr(module, name, real)
    return install
