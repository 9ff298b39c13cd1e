"""What every cell of a scale shares (data, networks, schedule, segmenter, seeds); docs/reproduce.md says
what each scale is for.
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Scale:
    name: str
    dataset_dir: str                # relative to the work dir (ignored by git: datasets/)
    synthcity: dict | None          # data/synthcity.py arguments to make it; None: user prepares it
    train_flags: tuple              # train.py flags shared by every cell
    n_epochs: int                   # epochs at the initial lr
    n_epochs_decay: int             # epochs of linear decay to 0
    save_epoch_freq: int            # checkpoints (and FCN-score-over-epochs points) every N epochs
    seeds: tuple                    # seeds of the main grid
    ablation_seeds: tuple           # seeds of the ablation groups (decomposition, λ mode, batch)
    groups: tuple                   # groups run when --groups is not given
    curve_groups: tuple             # groups whose cells are also scored at every saved epoch
    sweep_seeds: tuple = ()         # seeds of the λ and S sweeps; () = ablation_seeds
    segmenters: tuple = ()          # fcn_score --segmenter values; () = the dataset's defaults
    segmenter_recipe: tuple = ()    # evaluate/train_segmenter.py flags that make the segmenter
    segmenter_dir: str = ""         # where that recipe saves it (relative to the work dir)
    score_flags: tuple = ()         # extra fcn_score flags (e.g. --eval_size)
    test_flags: tuple = ()          # extra test.py flags
    device: str = "auto"
    jobs: int = 1                   # cells in parallel by default
    lr: float = 0.0002              # pix2pix's Adam learning rate (beta1 0.5)
    # Paths below are relative to the repository (committed), not the work dir.
    results_store: str = ""         # where finished cells' small results are kept (store.py); "" = none
    report_dir: str = ""            # default --report_dir; "" = results/repro_<scale>/report in the work dir
    compare_with: tuple = ()        # scales whose TRAdam − Adam the report sets beside this one's

    def __post_init__(self):
        if self.total_epochs % self.save_epoch_freq:
            raise ValueError(f"{self.name}: save_epoch_freq {self.save_epoch_freq} must divide "
                             f"the {self.total_epochs} epochs, so the last epoch's checkpoint marks training done")

    @property
    def total_epochs(self):
        return self.n_epochs + self.n_epochs_decay

    @property
    def train_frames(self):
        return self.synthcity["num_train"] if self.synthcity else None

    def steps(self, epochs=None, batch_size=1):
        """Generator steps after `epochs` epochs (default: all) at `batch_size`; None if unknown."""
        frames = self.train_frames
        epochs = self.total_epochs if epochs is None else epochs
        return None if frames is None else epochs * -(-frames // batch_size)

    def curve_epochs(self):
        return list(range(self.save_epoch_freq, self.total_epochs, self.save_epoch_freq))


SMOKE = Scale(
    name="smoke", dataset_dir="datasets/synthcity_smoke", synthcity=dict(num_train=6, num_val=3, size=64, seed=0),
    train_flags=("--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "64", "--crop_size", "64",
                 "--print_freq", "2", "--num_threads", "0"),
    n_epochs=1, n_epochs_decay=1, save_epoch_freq=1, seeds=(0,), ablation_seeds=(0,), groups=("main",),
    curve_groups=(), segmenter_recipe=("--size", "64", "--steps", "10", "--batch_size", "3"),
    segmenter_dir="checkpoints/repro_smoke_segmenter", test_flags=("--num_threads", "0"),
    score_flags=("--num_workers", "0"), device="cpu", jobs=2)

SYNTHCITY = Scale(
    name="synthcity", dataset_dir="datasets/synthcity_repro128",
    synthcity=dict(num_train=400, num_val=100, size=128, seed=0),
    train_flags=("--netG", "unet_128", "--ngf", "16", "--ndf", "16", "--load_size", "142", "--crop_size", "128",
                 "--print_freq", "50", "--num_threads", "0"),
    n_epochs=3, n_epochs_decay=3, save_epoch_freq=2, seeds=(0, 1, 2, 3, 4), ablation_seeds=(0, 1, 2),
    sweep_seeds=(0,), groups=("main", "decomposition", "lambda_mode", "batch_size", "tr_lambda", "inner_steps"),
    curve_groups=("main",), segmenter_recipe=("--size", "128", "--steps", "1500"),
    segmenter_dir="checkpoints/repro_synthcity_segmenter", test_flags=("--num_threads", "0"),
    score_flags=("--num_workers", "0"), device="cpu", jobs=2, results_store="docs/results/synthcity/cells")

# Ten times synthcity's budget on the same data, networks and segmenter (the same segmenter folder:
# both budgets are judged by one model). Scored every 10 epochs for the gap over training.
SYNTHCITY_LONG = dataclasses.replace(
    SYNTHCITY, name="synthcity_long", n_epochs=30, n_epochs_decay=30, save_epoch_freq=10, sweep_seeds=(),
    groups=("main", "decomposition"), results_store="docs/results/synthcity_long/cells",
    report_dir="docs/results/synthcity_long", compare_with=("synthcity",))

CITYSCAPES = Scale(
    name="cityscapes", dataset_dir="datasets/cityscapes", synthcity=None,
    train_flags=("--netG", "unet_256", "--ngf", "64", "--ndf", "64", "--load_size", "286", "--crop_size", "256"),
    n_epochs=100, n_epochs_decay=100, save_epoch_freq=20, seeds=(0, 1, 2), ablation_seeds=(0,),
    groups=("main",), curve_groups=("main",), device="cuda", jobs=1)

SCALES = {s.name: s for s in (SMOKE, SYNTHCITY, SYNTHCITY_LONG, CITYSCAPES)}
