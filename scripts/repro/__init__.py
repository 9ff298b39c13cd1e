"""The reproduction of the paper's pix2pix result (Adam vs TRAdam over seeds, with ablations), run by
scripts/reproduce.py; docs/reproduce.md is its manual. One role per file:

    cells.py     what a cell is (one training configuration + a seed) and the grid of cells
    scales.py    what every cell of a scale shares (smoke, synthcity, synthcity_long, cityscapes)
    commands.py  a cell's train / test / fcn_score command lines and the files that prove them done
    runner.py    runs those commands as subprocesses, skipping finished ones, N cells at a time
    store.py     finished cells' small results kept in git, so a grid continues on another machine
                 and its report is rebuilt from a fresh clone
    collect.py   reads what finished cells left (work dir or store) into plain records
    stats.py     mean ± std over seeds; paired t and Welch intervals (scipy)
    budgets.py   TRAdam − Adam of a scale's main grid, over training and across scales
    report.py    report.md, results.json (every number the report prints) and commands.sh
    plots.py     the report's PNGs: losses, FCN-score and the gap over training, sample images

Every cell is a separate chain of processes (train.py → test.py → evaluate/fcn_score.py), so cells
run in parallel and no model runs in this process.
"""
