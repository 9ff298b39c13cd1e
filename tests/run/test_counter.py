"""IterationCounter: position, events every --*_freq samples, labels and resume positions."""
from pix2pix_tr.run.counter import IterationCounter, Position


def counter(start=Position(1), **freq):
    settings = dict(print_freq=2, display_freq=3, update_html_freq=6, save_latest_freq=4, save_epoch_freq=2)
    return IterationCounter(start, last_epoch=3, dataset_size=5, **{**settings, **freq})


def run_epochs(c, steps_per_epoch):
    seen = []
    for epoch in c.epochs():
        for _ in range(steps_per_epoch if epoch > c.first_epoch or not c.epoch_iter else steps_per_epoch - 1):
            c.record_step_start()
            c.record_step_end(1)
            seen.append((epoch, c.epoch_iter, c.total_iters, c.due("print"), c.due("display"), c.due("save_latest")))
    return seen


def test_events_fall_on_multiples_of_their_frequency_in_samples_seen():
    seen = run_epochs(counter(), 5)
    assert [s[2] for s in seen] == list(range(1, 16))
    assert [s[2] for s in seen if s[3]] == [2, 4, 6, 8, 10, 12, 14]
    assert [s[2] for s in seen if s[4]] == [3, 6, 9, 12, 15]
    assert [s[2] for s in seen if s[5]] == [4, 8, 12]
    assert seen[5][:2] == (2, 1)                                   # epoch 2 starts from 0 samples in


def test_a_resumed_counter_goes_on_from_the_checkpoints_position():
    c = counter(Position(2, 1, 6), save_latest_freq=7)
    assert c.describe_last_saved() == "none: no checkpoint was saved yet"
    c = IterationCounter(Position(2, 1, 6), last_epoch=3, dataset_size=5, print_freq=1, display_freq=1,
                         update_html_freq=1, save_latest_freq=7, save_epoch_freq=2, resumed=True)
    assert c.describe_last_saved() == "epoch 2, 1 samples in"
    seen = run_epochs(c, 5)
    assert seen[0][:3] == (2, 2, 7) and seen[0][5]                 # the 7th sample: a periodic save
    assert seen[-1][:3] == (3, 5, 15)
    assert c.position() == Position(3, 5, 15) and c.position(epoch_done=True) == Position(4, 0, 15)
    assert c.epoch_labels() == ["latest"] and c.latest_labels(save_by_iter=True) == ["latest", "iter_15"]


def test_a_run_past_its_last_epoch_is_done():
    assert counter(Position(4)).done and not counter(Position(3)).done
    assert Position(4, 0, 15).describe() == "end of epoch 3"
