"""Running a training job: checkpoints and exact resume, the iteration counter, torchrun helpers,
stop signals and atomic writes."""
