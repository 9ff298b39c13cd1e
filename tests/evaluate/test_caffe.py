"""evaluate/caffe.py: Caffe's wire format read without Caffe. Hand-encoded bytes pin the field numbers
(independently of the writer) and fields it skips; the writer's four spellings (V2 `layer` / V1
`layers`, float / double data, `shape` / legacy dims) read back equal; malformed bytes raise
CaffeFormatError."""
import struct

import numpy as np
import pytest

from tests.evaluate import caffe_writer
from evaluate import caffe


def varint(v):
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def field(number, wire, payload):
    key = varint(number << 3 | wire)
    return key + (varint(len(payload)) + payload if wire == 2 else payload)


def test_hand_encoded_v2_and_v1_nets_are_read_by_caffe_field_numbers():
    weights = [0.5, -1.25, 3.0, 2.0, 0.0, -7.5]
    packed_floats = struct.pack("<6f", *weights)
    blob = (field(7, 2, field(1, 2, varint(2) + varint(3)))        # shape { dim: 2 dim: 3 }
            + field(5, 2, packed_floats)                             # data, packed
            + field(6, 2, struct.pack("<6f", *[9.0] * 6)))           # diff: skipped
    bias = field(8, 2, struct.pack("<2d", 0.25, -0.5))               # double_data, no shape
    layer = (field(1, 2, b"fc") + field(2, 2, b"InnerProduct") + field(3, 2, b"data") + field(4, 2, b"fc")
             + field(6, 2, field(3, 5, struct.pack("<f", 1.0)))       # param { lr_mult: 1 }: skipped
             + field(7, 2, blob) + field(7, 2, bias)
             + field(117, 2, field(1, 0, varint(2))))                 # inner_product_param: skipped
    net = caffe.parse_net(field(1, 2, b"tiny") + field(100, 2, layer))
    assert list(net) == ["fc"]
    fc = net["fc"]
    assert fc[0].shape == (2, 3) and not fc[0].legacy
    assert np.array_equal(fc[0].array(), np.array(weights, np.float32).reshape(2, 3))
    assert fc[1].values.dtype == np.float64 and fc[1].array().tolist() == [0.25, -0.5]

    # V1: name = 4, type = 5 (enum: 4 = CONVOLUTION), blobs = 6; legacy num/channels/height/width,
    # and floats written unpacked (one fixed32 field each), which protobuf parsers must accept too
    v1_blob = (field(1, 0, varint(1)) + field(2, 0, varint(1)) + field(3, 0, varint(1)) + field(4, 0, varint(2))
               + field(5, 5, struct.pack("<f", 1.5)) + field(5, 5, struct.pack("<f", -2.5)))
    v1_layer = field(2, 2, b"data") + field(3, 2, b"conv") + field(4, 2, b"conv") + field(5, 0, varint(4)) \
        + field(6, 2, v1_blob)
    conv = caffe.parse_net(field(2, 2, v1_layer))["conv"]
    assert conv[0].shape == (1, 1, 1, 2) and conv[0].legacy
    assert conv[0].array().tolist() == [[[[1.5, -2.5]]]]


@pytest.mark.parametrize("v1", [False, True])
@pytest.mark.parametrize("double", [False, True])
@pytest.mark.parametrize("legacy_dims", [False, True])
def test_writer_spellings_read_back(tmp_path, v1, double, legacy_dims):
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((5, 3, 2, 2)), rng.standard_normal(5)
    path = tmp_path / "m.caffemodel"
    size = caffe_writer.write_caffemodel(path, [("c1", "Convolution", [w, b], ["data"], ["c1"]),
                                         ("r1", "ReLU", [], ["c1"], ["c1"]),
                                         ("up", "Deconvolution", [w[:3]], ["c1"], ["up"])],
                                  v1=v1, double=double, legacy_dims=legacy_dims)
    assert size == path.stat().st_size
    net = caffe.read_caffemodel(path)
    assert list(net) == ["c1", "r1", "up"] and net["r1"] == []
    c1 = net["c1"]
    assert c1[0].values.dtype == (np.float64 if double else np.float32)
    assert c1[1].shape == ((1, 1, 1, 5) if legacy_dims else (5,)) and c1[1].legacy == legacy_dims
    want = w if double else w.astype(np.float32)
    assert np.array_equal(c1[0].array(np.float64), want.astype(np.float64))
    assert np.array_equal(net["up"][0].array(np.float64), want[:3].astype(np.float64))


def test_malformed_bytes_raise_with_the_byte_offset(tmp_path):
    good = caffe_writer.write_caffemodel(tmp_path / "m.caffemodel", [("c", "Convolution", [np.ones((4, 4))], [], [])])
    data = (tmp_path / "m.caffemodel").read_bytes()
    assert len(data) == good
    for cut in (good - 1, good // 2, 3):
        with pytest.raises(caffe.CaffeFormatError, match="cut short"):
            caffe.parse_net(data[:cut])
    with pytest.raises(caffe.CaffeFormatError, match="wire type 7"):
        caffe.parse_net(b"\x0f\x00")                                  # field 1, wire type 7
    with pytest.raises(caffe.CaffeFormatError, match="field number 0"):
        caffe.parse_net(b"\x02\x00")
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    with pytest.raises(caffe.CaffeFormatError):
        caffe.parse_net(png)
    bad_count = field(100, 2, field(1, 2, b"c") + field(7, 2, field(7, 2, field(1, 2, varint(3)))
                                                         + field(5, 2, struct.pack("<2f", 1, 2))))
    blob = caffe.parse_net(bad_count)["c"][0]
    with pytest.raises(caffe.CaffeFormatError, match="shape 3 holds 2 values"):
        blob.array()
    (tmp_path / "empty.caffemodel").write_bytes(b"")
    assert caffe.read_caffemodel(tmp_path / "empty.caffemodel") == {}
