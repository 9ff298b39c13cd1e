"""A flag this project removed still parses and says in one line what happens instead."""
from options import TrainOptions
from options.train_options import REMOVED_FLAGS


def test_a_removed_flag_is_a_note_and_is_not_applied():
    options = TrainOptions()
    opt = options.parse(["--cpu_conv_plan", "auto"])
    assert options.notes == [REMOVED_FLAGS["cpu_conv_plan"]] and "\n" not in options.notes[0]
    assert not hasattr(opt, "cpu_conv_plan")
    untyped = TrainOptions()
    untyped.parse([])
    assert untyped.notes == []
