"""Variants (training configurations), cells (a variant and a seed) and the grid of groups. Cells are named
by what they are, so a configuration two groups share is trained once; docs/reproduce.md describes the groups.
"""
import dataclasses
from fractions import Fraction

from pix2pix_tr.errors import UserError

DEFAULT_LAMBDA, DEFAULT_INNER_STEPS = 0.1, 10
SWEEP_GROUPS = ("tr_lambda", "inner_steps")     # hyperparameter sweeps: may run on fewer seeds
BATCH_GRID = (1, 4, 8)


def harmonic_mean_factor(inner_steps):
    """Mean of 1/(k+1) over k = 0..S-1, i.e. H_S / S: TRAdam's mean step-size factor."""
    return float(sum(Fraction(1, k + 1) for k in range(inner_steps)) / inner_steps)


def _num(x):
    """A number as a short name fragment: 0.1 -> '0.1', 1.0 -> '1', 0.29289 -> '0.2929'."""
    return f"{x:.4g}"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One training configuration; the TR fields mean nothing (and are normalised) for adam."""
    optimizer: str = "adam"            # adam | tradam
    batch_size: int = 1
    tr_lambda: float = DEFAULT_LAMBDA
    inner_steps: int = DEFAULT_INNER_STEPS
    lambda_mode: str = "scaled"        # train.py --tr_lambda_mode: scaled (default) | fixed | released
    inner_lr_decay: bool = True        # TR's lr/(k+1) step-size sawtooth
    lr_factor: float = 1.0             # multiplies the base learning rate

    def __post_init__(self):
        if self.optimizer == "adam":   # one name for every plain-Adam configuration
            for field in ("tr_lambda", "inner_steps", "lambda_mode", "inner_lr_decay"):
                object.__setattr__(self, field, getattr(Variant, field))

    @property
    def name(self):
        parts = [self.optimizer]
        if self.optimizer == "tradam":
            parts += [f"S{self.inner_steps}", f"l{_num(self.tr_lambda)}"]
            parts += [f"{self.lambda_mode}lambda"] * (self.lambda_mode != "scaled")
            parts += ["nosawtooth"] * (not self.inner_lr_decay)
        parts += [f"lrx{_num(self.lr_factor)}"] * (self.lr_factor != 1.0) + [f"bs{self.batch_size}"]
        return "-".join(parts)

    @property
    def label(self):
        text = "Adam" if self.optimizer == "adam" else f"TRAdam S={self.inner_steps} λ={_num(self.tr_lambda)}"
        if self.lambda_mode != "scaled":
            text += {"released": " (λ/lr)"}.get(self.lambda_mode, f" ({self.lambda_mode} λ)")
        text += " (no sawtooth)" * (not self.inner_lr_decay)
        text += f", lr × {_num(self.lr_factor)}" * (self.lr_factor != 1.0)
        return text + ("" if self.batch_size == 1 else f", batch {self.batch_size}")


@dataclasses.dataclass(frozen=True)
class Cell:
    variant: Variant
    seed: int

    @property
    def name(self):
        return f"{self.variant.name}-seed{self.seed}"


ADAM, TRADAM = Variant("adam"), Variant("tradam")
_replace, _mean_step = dataclasses.replace, harmonic_mean_factor(DEFAULT_INNER_STEPS)
VARIANTS = {        # group -> its variants, in order; an ablation compares each with its first
    "main": [ADAM, TRADAM],
    "decomposition": [ADAM, TRADAM, _replace(TRADAM, tr_lambda=0.0), _replace(TRADAM, inner_lr_decay=False),
                      _replace(ADAM, lr_factor=_mean_step), _replace(TRADAM, lr_factor=1 / _mean_step)],
    "lambda_mode": [TRADAM, _replace(TRADAM, lambda_mode="fixed"), _replace(TRADAM, lambda_mode="released")],
    "batch_size": [_replace(v, batch_size=b) for b in BATCH_GRID for v in (ADAM, TRADAM)],
    "tr_lambda": [_replace(TRADAM, tr_lambda=lam) for lam in (0.0, 0.01, 0.1, 1.0)],
    "inner_steps": [_replace(TRADAM, inner_steps=s) for s in (1, 5, 10, 20, 50)],
}
GROUPS = tuple(VARIANTS)


@dataclasses.dataclass
class Grid:
    cells: list
    groups: dict        # cell name -> [group, ...]
    seeds: dict         # group -> seeds it ran with

    def cells_of(self, group):
        return [c for c in self.cells if group in self.groups[c.name]]


def expand(groups, main_seeds, ablation_seeds, sweep_seeds=None):
    """Cells of `groups` in GROUPS order; a cell shared by several groups appears once."""
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise UserError(f"unknown group(s) {', '.join(unknown)}; groups are {', '.join(GROUPS)}")
    cells, member_of, seeds_of = [], {}, {}
    for group in (g for g in GROUPS if g in groups):
        seeds_of[group] = list(main_seeds if group == "main" else
                               (sweep_seeds or ablation_seeds) if group in SWEEP_GROUPS else ablation_seeds)
        for cell in (Cell(v, seed) for seed in seeds_of[group] for v in VARIANTS[group]):
            if cell.name not in member_of:
                cells.append(cell)
                member_of[cell.name] = []
            if group not in member_of[cell.name]:
                member_of[cell.name].append(group)
    return Grid(cells, member_of, seeds_of)


def select(grid, only_cells=None):
    if not only_cells:
        return grid
    missing = [n for n in only_cells if n not in grid.groups]
    if missing:
        raise UserError(f"no cell named {', '.join(missing)} in this grid (list them with --list)")
    cells = [c for c in grid.cells if c.name in only_cells]
    return Grid(cells, {c.name: grid.groups[c.name] for c in cells}, grid.seeds)
