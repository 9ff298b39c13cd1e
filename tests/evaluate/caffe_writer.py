"""Caffe's .caffemodel format written without Caffe (V2 or V1 layers, float or double data, `shape` or
legacy dims): the stand-in models the tests read back through evaluate/caffe.py."""
import numpy as np

from evaluate.caffe import BYTES, VARINT

# Caffe's V1LayerParameter.LayerType enum (caffe.proto)
_V1_CODES = {"Convolution": 4, "Pooling": 17, "ReLU": 18, "Deconvolution": 39, "Eltwise": 25, "InnerProduct": 14,
             "Dropout": 6, "Data": 5, "Softmax": 20, "SoftmaxWithLoss": 21}


# Messages are built as lists of byte chunks, so a 411 MB weight array is written straight from its
# numpy buffer instead of being copied into every enclosing message.
def _enc_varint(v):
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        if not v:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _key(field, wire):
    return _enc_varint(field << 3 | wire)


def _size(chunks):
    return sum(len(c) for c in chunks)


def _len_field(field, chunks):
    if isinstance(chunks, (bytes, bytearray, memoryview)):
        chunks = [chunks]
    return [_key(field, BYTES) + _enc_varint(_size(chunks))] + list(chunks)


def encode_blob(array, *, double=False, legacy_dims=False):
    """BlobProto chunks of a numpy array: `shape` (or the legacy num/channels/height/width, left-padded
    with 1s to 4-D), then packed float (or double) data."""
    array = np.asarray(array)
    head = bytearray()
    if legacy_dims:
        dims = (1,) * (4 - array.ndim) + tuple(array.shape)
        if len(dims) != 4:
            raise ValueError("legacy blob dims are 4-D at most")
        for field, d in zip((1, 2, 3, 4), dims):
            head += _key(field, VARINT) + _enc_varint(int(d))
    else:
        packed = b"".join(_enc_varint(int(d)) for d in array.shape)
        head += b"".join(_len_field(7, b"".join(_len_field(1, packed))))
    data = np.ascontiguousarray(array, dtype="<f8" if double else "<f4")
    return [bytes(head)] + _len_field(8 if double else 5, memoryview(data).cast("B"))


def encode_layer(name, type_, blobs, *, v1=False, bottoms=(), tops=(), double=False, legacy_dims=False):
    """LayerParameter (or V1LayerParameter) chunks with these blobs (numpy arrays)."""
    head = []
    if v1:
        head += _len_field(4, name.encode()) + [_key(5, VARINT) + _enc_varint(_V1_CODES[type_])]
        head += [c for b in bottoms for c in _len_field(2, b.encode())]
        head += [c for t in tops for c in _len_field(3, t.encode())]
        blob_field = 6
    else:
        head += _len_field(1, name.encode()) + _len_field(2, type_.encode())
        head += [c for b in bottoms for c in _len_field(3, b.encode())]
        head += [c for t in tops for c in _len_field(4, t.encode())]
        blob_field = 7
    out = [b"".join(head)]
    for blob in blobs:
        out += _len_field(blob_field, encode_blob(blob, double=double, legacy_dims=legacy_dims))
    return out


def write_caffemodel(path, layers, *, name="net", v1=False, double=False, legacy_dims=False):
    """Write a NetParameter: `layers` is a list of (name, type, [numpy arrays], bottoms, tops), in
    V2 `layer` fields (or V1 `layers` with v1=True), float (or double) data, `shape` (or legacy
    dims). Returns the number of bytes written."""
    chunks = _len_field(1, name.encode())
    for layer_name, type_, blobs, bottoms, tops in layers:
        chunks += _len_field(2 if v1 else 100, encode_layer(
            layer_name, type_, blobs, v1=v1, bottoms=bottoms, tops=tops, double=double,
            legacy_dims=legacy_dims))
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
    return _size(chunks)
