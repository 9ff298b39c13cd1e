"""run/checkpoint.py: weight files in pix2pix's format, one-line errors for unreadable files, the
state-format check, and every RNG put back as it was."""
import random

import numpy as np
import pytest
import torch

from pix2pix_tr.errors import UserError
from pix2pix_tr.models.networks import define_G
from pix2pix_tr.run import checkpoint


@pytest.mark.parametrize("damage, said", [
    (None, "no checkpoint"),
    (b"", "is not a readable checkpoint"),
    (b"PK\x03\x04 truncated zip", "is not a readable checkpoint"),
    ("tensorless", "holds no state dict of tensors"),
])
def test_unreadable_weight_files_are_one_line_naming_the_file(tmp_path, damage, said):
    path = tmp_path / "latest_net_G.pth"
    if damage == "tensorless":
        torch.save({"epoch": 3}, path)
    elif damage is not None:
        path.write_bytes(damage)
    with pytest.raises(UserError, match=said) as err:
        checkpoint.read_weights(str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_weight_files_round_trip_strictly_and_a_wrong_net_is_one_line(tmp_path):
    net = define_G(3, 3, 8, "unet_128")
    checkpoint.write_weight_files(tmp_path, ["latest", "3"], {"G": checkpoint.network_state(net)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3_net_G.pth", "latest_net_G.pth"]
    saved = torch.load(tmp_path / "3_net_G.pth", weights_only=True)       # what pix2pix does with it
    define_G(3, 3, 8, "unet_128").load_state_dict(saved, strict=True)
    other = define_G(3, 3, 8, "unet_128")
    checkpoint.load_network(other, checkpoint.weights_path(tmp_path, "latest", "G"))
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), other.state_dict().values()))
    with pytest.raises(UserError, match="does not fit netG"):
        checkpoint.load_network(define_G(3, 3, 16, "unet_128"), checkpoint.weights_path(tmp_path, "latest", "G"))


def test_a_state_of_another_format_is_refused_with_the_way_out(tmp_path):
    torch.save({"version": 1, "options": {}}, tmp_path / checkpoint.STATE_FILE)
    with pytest.raises(UserError, match="has state version 1, expected 2; delete it to continue from the weights"):
        checkpoint.load_training_state(str(tmp_path))
    assert checkpoint.load_training_state(str(tmp_path / "none")) is None


def test_every_rng_is_put_back(tmp_path):
    checkpoint.seed_everything(7)
    torch.save(checkpoint.capture_rng_state(), tmp_path / "rng.pth")
    state = torch.load(tmp_path / "rng.pth", weights_only=True)           # plain types: loads safely
    drawn = (random.random(), np.random.rand(), torch.rand(1))
    random.random(), np.random.rand(), torch.rand(1)
    checkpoint.restore_rng_state(state)
    assert (random.random(), np.random.rand()) == drawn[:2] and torch.equal(torch.rand(1), drawn[2])
