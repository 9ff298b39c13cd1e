"""Caffe's binary model files (.caffemodel), read without Caffe or a protobuf compiler.

A .caffemodel is one protobuf message, `NetParameter`, in protobuf's wire format: a sequence of
(field number, wire type, value) records, where a nested message or a packed array is a
length-prefixed run of bytes. Only the few fields that carry weights are needed (numbers from
Caffe's src/caffe/proto/caffe.proto):

    NetParameter      layers = 2 (V1LayerParameter, legacy); layer = 100 (LayerParameter)
    LayerParameter    name = 1; blobs = 7 (BlobProto)
    V1LayerParameter  name = 4; blobs = 6
    BlobProto         num = 1, channels = 2, height = 3, width = 4 (legacy 4-D shape);
                      data = 5 (packed float); shape = 7 (BlobShape); double_data = 8 (packed double)
    BlobShape         dim = 1 (packed int64)

Everything else (types, tops, param specs, fillers, layer parameters, diffs) is skipped by its wire
type. The float arrays are numpy views of the file's bytes, read once: no copy per blob. Malformed
input raises `CaffeFormatError` with the byte offset; callers turn it into a one-line UserError.
"""
import dataclasses
import os

import numpy as np

VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5


class CaffeFormatError(ValueError):
    """The bytes are not a well-formed NetParameter (or are cut short)."""


@dataclasses.dataclass
class Blob:
    """One parameter blob: its shape as Caffe stores it and its values (a flat array view)."""

    shape: tuple            # from `shape.dim`, else the legacy (num, channels, height, width)
    legacy: bool            # True when the shape came from the legacy 4-D fields
    values: np.ndarray      # flat float32 or float64

    def array(self, dtype=np.float32):
        """The values as an array of `shape` in `dtype` (float32 unless told): a view of `values`
        when they already have that dtype, else a converted copy."""
        if self.values.size != int(np.prod(self.shape, dtype=np.int64)):
            raise CaffeFormatError(f"a blob of shape {'x'.join(map(str, self.shape))} holds "
                                   f"{self.values.size} values")
        return np.asarray(self.values, dtype=dtype).reshape(self.shape)


def _varint(buf, pos, end):
    result = shift = 0
    while True:
        if pos >= end:
            raise CaffeFormatError(f"cut short inside a number at byte {pos}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CaffeFormatError(f"a number longer than 10 bytes at byte {pos}")


def _fields(buf, start, end):
    """Yield (field number, wire type, value, offset of the field) over buf[start:end]. A BYTES value
    is its (start, stop) offsets; varints are ints, fixed values bytes."""
    pos = start
    while pos < end:
        at = pos
        key, pos = _varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise CaffeFormatError(f"field number 0 at byte {at}")
        if wire == VARINT:
            value, pos = _varint(buf, pos, end)
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            if pos + size > end:
                raise CaffeFormatError(f"cut short inside a {size}-byte value at byte {pos}")
            value, pos = bytes(buf[pos:pos + size]), pos + size
        elif wire == BYTES:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise CaffeFormatError(f"cut short: a field of {length} bytes at byte {pos} runs past "
                                       f"the end ({end})")
            value, pos = (pos, pos + length), pos + length
        else:
            raise CaffeFormatError(f"wire type {wire} (field {field}) at byte {at} is not protobuf's")
        yield field, wire, value, at


def _string(buf, span):
    try:
        return bytes(buf[span[0]:span[1]]).decode("utf-8")
    except UnicodeDecodeError:
        raise CaffeFormatError(f"a name at byte {span[0]} is not UTF-8 text") from None


def _packed_ints(buf, wire, value):
    if wire == VARINT:
        return [value]
    out, pos = [], value[0]
    while pos < value[1]:
        v, pos = _varint(buf, pos, value[1])
        out.append(v)
    return out


def _signed64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _blob(buf, start, end):
    legacy, shape, chunks = {}, None, []
    for field, wire, value, at in _fields(buf, start, end):
        if field in (1, 2, 3, 4) and wire == VARINT:
            legacy[field] = _signed64(value)
        elif field == 7 and wire == BYTES:
            shape = []
            for f, w, v, _ in _fields(buf, *value):
                if f == 1:
                    shape += [_signed64(d) for d in _packed_ints(buf, w, v)]
        elif field in (5, 8):
            dtype = np.dtype("<f4" if field == 5 else "<f8")
            if wire == BYTES:
                lo, hi = value
                if (hi - lo) % dtype.itemsize:
                    raise CaffeFormatError(f"packed {'float' if field == 5 else 'double'} data at byte {lo} "
                                           f"is {hi - lo} bytes, not a whole number of values")
                chunks.append(np.frombuffer(buf, dtype=dtype, count=(hi - lo) // dtype.itemsize, offset=lo))
            elif wire in (FIXED32, FIXED64):
                chunks.append(np.frombuffer(value, dtype=dtype))
            else:
                raise CaffeFormatError(f"blob data at byte {at} has wire type {wire}")
    if shape is not None:
        shape, is_legacy = tuple(shape), False
    elif legacy:
        shape, is_legacy = tuple(legacy.get(k, 0) for k in (1, 2, 3, 4)), True
    else:
        shape, is_legacy = (sum(c.size for c in chunks),), False
    if any(d < 0 for d in shape):
        raise CaffeFormatError(f"a blob at byte {start} has a negative dimension {shape}")
    values = chunks[0] if len(chunks) == 1 else (np.concatenate(chunks) if chunks else np.zeros(0, np.float32))
    return Blob(shape=shape, legacy=is_legacy, values=values)


def _layer(buf, start, end, v1):
    """(name, [Blob]) of a LayerParameter, or of a V1LayerParameter when `v1`."""
    name_field, blobs_field = (4, 6) if v1 else (1, 7)
    name, blobs = "", []
    for field, wire, value, _ in _fields(buf, start, end):
        if wire == BYTES and field == name_field:
            name = _string(buf, value)
        elif wire == BYTES and field == blobs_field:
            blobs.append(_blob(buf, *value))
    return name, blobs


def parse_net(buf):
    """{layer name: [Blob]} in file order, from the bytes of a NetParameter (bytes or bytearray)."""
    layers = {}
    for field, wire, value, _ in _fields(buf, 0, len(buf)):
        if field in (100, 2) and wire == BYTES:
            name, blobs = _layer(buf, *value, v1=field == 2)
            layers[name] = blobs
    return layers


def read_caffemodel(path):
    """Parse a .caffemodel file into {layer name: [Blob]}. The blobs' arrays are views of one buffer
    that holds the file."""
    with open(path, "rb") as f:
        buf = bytearray(os.fstat(f.fileno()).st_size)
        f.readinto(buf)
    return parse_net(buf)
