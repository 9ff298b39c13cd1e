"""Where a run is, how long its steps take, and when it prints, displays and saves.

As SPADE's `IterationCounter`, the loop asks the counter rather than doing arithmetic: the position
(epoch, samples consumed in it, samples in all), step and data times, and pix2pix's events, each a
multiple of its --*_freq in samples seen. A resumed run starts at the checkpoint's position.
"""
import time
from typing import NamedTuple


class Position(NamedTuple):
    """A moment of training: `epoch` to run (or go on with), `epoch_iter` samples of it consumed."""
    epoch: int
    epoch_iter: int = 0
    total_iters: int = 0

    def describe(self):
        return f"end of epoch {self.epoch - 1}" if self.epoch_iter == 0 else \
               f"epoch {self.epoch}, {self.epoch_iter} samples in"


class IterationCounter:
    def __init__(self, start, *, last_epoch, dataset_size, print_freq, display_freq, update_html_freq,
                 save_latest_freq, save_epoch_freq, resumed=False):
        self.first_epoch, self.last_epoch, self.dataset_size = start.epoch, last_epoch, dataset_size
        self.epoch, self.epoch_iter, self.total_iters = start
        self.freq = dict(print=print_freq, display=display_freq, update_html=update_html_freq,
                         save_latest=save_latest_freq)
        self.save_epoch_freq = save_epoch_freq
        self.last_saved = start if resumed else None       # the last good checkpoint's position
        self._skip = start.epoch_iter

    @property
    def done(self):
        return self.first_epoch > self.last_epoch

    def epochs(self):
        """Each epoch still to train; the first one resumed `epoch_iter` samples in."""
        for self.epoch in range(self.first_epoch, self.last_epoch + 1):
            self.epoch_iter, self._skip = self._skip, 0
            self._step_end = time.time()
            yield self.epoch

    def record_step_start(self):
        self._step_start = time.time()
        self.data_time = self._step_start - self._step_end

    def record_step_end(self, samples):
        self._step_end = time.time()
        self.step_time = (self._step_end - self._step_start) / samples
        self.total_iters += samples
        self.epoch_iter += samples

    def due(self, event):
        """Whether --<event>_freq (print, display, update_html, save_latest) divides the samples seen."""
        return self.total_iters % self.freq[event] == 0

    def latest_labels(self, save_by_iter=False):
        """The labels of a save every --save_latest_freq: latest, and iter_<N> with --save_by_iter."""
        return ["latest"] + ([f"iter_{self.total_iters}"] if save_by_iter else [])

    def epoch_labels(self):
        """The checkpoint labels at this epoch's end: latest, and the epoch every --save_epoch_freq."""
        return ["latest"] + ([str(self.epoch)] if self.epoch % self.save_epoch_freq == 0 else [])

    def position(self, *, epoch_done=False):
        """Where a checkpoint taken now resumes: mid-epoch, or the next epoch's start."""
        if epoch_done:
            return Position(self.epoch + 1, 0, self.total_iters)
        return Position(self.epoch, self.epoch_iter, self.total_iters)

    def describe_last_saved(self):
        return self.last_saved.describe() if self.last_saved else "none: no checkpoint was saved yet"

    @property
    def epoch_fraction(self):
        return self.epoch_iter / self.dataset_size
