"""The reproduction grid run by scripts/reproduce.py (manual: docs/reproduce.md); each cell is a chain of
subprocesses (train.py → test.py → evaluate/fcn_score.py), so no model runs in this process.
"""
