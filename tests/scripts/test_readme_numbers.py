"""The README's results section is what scripts/readme_numbers.py prints from the committed store."""
import json
import os

from scripts import readme_numbers


def test_readme_results_section_is_the_stores():
    with open(readme_numbers.README, encoding="utf-8") as f:
        readme = f.read()
    assert readme_numbers.readme_section(readme) == readme_numbers.section(), \
        "README.md's results section differs from the store's: run python scripts/readme_numbers.py --write"


def test_numbers_are_rounded_once_from_full_precision():
    path = os.path.join(readme_numbers.REPO, "docs/results/synthcity_long/results.json")
    with open(path, encoding="utf-8") as f:
        iou = json.load(f)["across_budgets"]["synthcity"]["segmenters"]["repro_synthcity_segmenter"]["metrics"]
    long = iou["mean_iou"]["long"]
    assert round(long["mean"], 4) == -0.0125 and f"{long['mean']:+.3f}" == "-0.012"   # not −0.013 via −0.0125
    assert "| class IoU | −0.081 [−0.109, −0.053] | −0.012 [−0.049, +0.024] |" in readme_numbers.section()
