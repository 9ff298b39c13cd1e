"""The reproduction of the paper's pix2pix result: Adam vs TRAdam over seeds, ablations, a report.

`scripts/reproduce.py` is the entry point; this package holds its parts, one role per file:

    cells.py      what a cell is (one training configuration + seed) and the grid of cells
    scales.py     the fixed settings of each scale (smoke, synthcity, synthcity_long, cityscapes)
    commands.py   the train / test / fcn_score command lines of a cell and where they write
    runner.py     runs cells' stages as subprocesses, skipping finished ones, N cells at a time
    store.py      finished cells' small results (scores, loss summary, commands) kept in git, so a
                  grid continues elsewhere and its report is rebuilt from a fresh clone
    collect.py    reads what finished cells left (work dir or store) into plain records
    stats.py      mean ± std over seeds, paired difference with a t confidence interval
    budgets.py    TRAdam − Adam over training and across budgets (another scale's cells or report)
    plots.py      loss curves, FCN-score and the TRAdam − Adam gap over epochs as PNG (matplotlib)
    samples.py    sample image grids (real A | Adam | TRAdam | real B) as PNG
    document.py   a tiny report model (headings, paragraphs, tables, images, code)
    render.py     that model as markdown and as HTML (dominate)
    report.py     builds the report's content from collected records

Every cell is a separate process chain (train.py → test.py → evaluate/fcn_score.py), so cells run
in parallel and the orchestration never imports the trainer.
"""
