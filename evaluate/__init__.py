"""FCN-score and FID/KID of synthesized photos (README's "What is where"; docs/evaluate.md).

Used from the repository root (`python evaluate/fcn_score.py`), not installed: the name `evaluate`
is also a PyPI package.
"""
