"""SynthCity: procedural street scenes in the prepared layout, so everything runs without Cityscapes.

A frame is a label map over ten Cityscapes classes laid out in perspective (`make_layout`) and a photo
painted from it (`paint`); the two draw from separate random streams, so a frame is a pure function of
(seed, index) (`render_frame`). Committed results depend on these pixels: a change to the drawing is a
new GENERATOR_VERSION. To add a class: give it a part in `PARTS`, draw it in `make_layout`, colour it
in `paint`. Usage and figures: docs/data.md.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import itertools  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from data.layout import (IGNORE_INDEX, DatasetMeta, PreparedLayout, check_same_params,  # noqa: E402
                         cityscapes_classes, decoded_size, make_output_dir, run_jobs)
from pix2pix_tr.run import atomic  # noqa: E402
from pix2pix_tr.errors import UserError, run_cli  # noqa: E402

GENERATOR_VERSION = 1
NAME = "synthcity"
VAL_INDEX_OFFSET = 1_000_000          # val frames are indices 1_000_000.. : independent of num_train
PARAMS_FILE = ".synthcity_params.json"

# Cityscapes trainIds of the classes SynthCity draws.
ROAD, SIDEWALK, BUILDING, POLE, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY, PERSON, CAR = (
    0, 1, 2, 5, 7, 8, 9, 10, 11, 13)

# Appearance parts: what the painter distinguishes. part code -> trainId.
PARTS = {
    "sky": SKY, "road": ROAD, "sidewalk": SIDEWALK, "terrain": TERRAIN,
    "facade": BUILDING, "hedge": VEGETATION, "crown": VEGETATION, "trunk": VEGETATION,
    "pole": POLE, "sign": TRAFFIC_SIGN, "sign_inner": TRAFFIC_SIGN,
    "car_body": CAR, "car_glass": CAR, "car_wheel": CAR, "car_light": CAR,
    "skin": PERSON, "shirt": PERSON, "pants": PERSON,
}
P = {name: code for code, name in enumerate(PARTS)}
PART_CLASS = np.array(list(PARTS.values()), dtype=np.uint8)
CLASSES_DRAWN = sorted(set(PARTS.values()))


@dataclasses.dataclass
class Layout:
    """A scene's label map and the geometry the painter textures it with."""

    part: np.ndarray        # HxW uint8 part code (see PARTS)
    inst: np.ndarray        # HxW int32 instance id (0 = none): objects and facade blocks
    n_inst: int
    ground_x: np.ndarray    # HxW lateral metres on the ground plane (nan above the horizon)
    ground_z: np.ndarray    # HxW depth metres on the ground plane
    facade_u: np.ndarray    # W along-street metres of the facade seen in each column
    facade_v: np.ndarray    # HxW height metres on the facade
    facade_side: np.ndarray  # W +1 right, -1 left
    horizon: float
    road_half: float

    @property
    def labels(self):
        return PART_CLASS[self.part]


# --- layout -----------------------------------------------------------------------------------
class _Scene:
    """Projection of a street seen from a camera at height hc, looking down the street (+z)."""

    def __init__(self, rng, size):
        self.size = size
        self.f = size * rng.uniform(0.7, 0.95)
        self.yh = size * rng.uniform(0.36, 0.5)
        self.xv = size * rng.uniform(0.38, 0.62)
        self.hc = rng.uniform(1.3, 1.7)
        self.road_half = rng.uniform(3.5, 7.0)
        self.cam_x = rng.uniform(-0.4, 0.4) * self.road_half

    def sx(self, x, z):
        return self.xv + self.f * (x - self.cam_x) / z

    def sy(self, h, z):
        return self.yh + self.f * (self.hc - h) / z


def _fill(part, inst, pts, part_code, inst_id):
    pts = [np.round(np.asarray(p, dtype=np.float64) * 16).astype(np.int32) for p in pts]
    cv2.fillPoly(part, pts, int(part_code), lineType=cv2.LINE_8, shift=4)
    cv2.fillPoly(inst, pts, int(inst_id), lineType=cv2.LINE_8, shift=4)


def _box(sc, x0, x1, h0, h1, z):
    """Screen quad of an upright rectangle facing the camera at depth z."""
    return [(sc.sx(x0, z), sc.sy(h0, z)), (sc.sx(x1, z), sc.sy(h0, z)),
            (sc.sx(x1, z), sc.sy(h1, z)), (sc.sx(x0, z), sc.sy(h1, z))]


def _side(sc, x, h0, h1, z0, z1):
    """Screen quad of an upright rectangle along the street (plane x = const) from z0 to z1."""
    return [(sc.sx(x, z0), sc.sy(h0, z0)), (sc.sx(x, z1), sc.sy(h0, z1)),
            (sc.sx(x, z1), sc.sy(h1, z1)), (sc.sx(x, z0), sc.sy(h1, z0))]


def _thick_box(sc, x, half_w, h0, h1, z, min_px=1.0):
    """A thin upright bar (pole, trunk) at least min_px wide on screen."""
    half = max(half_w, 0.5 * min_px * z / sc.f)
    return _box(sc, x - half, x + half, h0, h1, z)


def _draw_car(sc, rng, part, inst, new_id, x, z):
    w, length = rng.uniform(1.65, 1.95), rng.uniform(3.9, 4.8)
    h_body, h_roof = rng.uniform(0.9, 1.1), rng.uniform(1.35, 1.6)
    x0, x1 = x - w / 2, x + w / 2
    cid = new_id()
    # the side facing the camera, drawn first (it lies behind the rear face)
    xs = x0 if x > sc.cam_x else x1
    _fill(part, inst, [_side(sc, xs, 0.2, h_body, z, z + length)], P["car_body"], cid)
    _fill(part, inst, [_side(sc, xs, h_body, h_roof, z + 0.25 * length, z + 0.8 * length)],
          P["car_body"], cid)
    _fill(part, inst, [_side(sc, xs, h_body + 0.05, h_roof - 0.08, z + 0.3 * length,
                             z + 0.75 * length)], P["car_glass"], cid)
    for zc in (z + 0.75, z + length - 0.75):
        r = 0.33 * sc.f / zc
        cx, cy = sc.sx(xs, zc), sc.sy(0.33, zc)
        cv2.ellipse(part, (round(cx), round(cy)), (max(1, round(r * 0.35)), max(1, round(r))), 0, 0,
                    360, P["car_wheel"], -1)
        cv2.ellipse(inst, (round(cx), round(cy)), (max(1, round(r * 0.35)), max(1, round(r))), 0, 0,
                    360, cid, -1)
    # rear face: wheels, body, cabin with its window, lights
    for wx in (x0 + 0.05, x1 - 0.3):
        _fill(part, inst, [_box(sc, wx, wx + 0.25, 0.0, 0.4, z)], P["car_wheel"], cid)
    _fill(part, inst, [_box(sc, x0, x1, 0.2, h_body, z)], P["car_body"], cid)
    inset = 0.12 * w
    cabin = [(sc.sx(x0 + 0.04, z + 0.3), sc.sy(h_body, z + 0.3)),
             (sc.sx(x1 - 0.04, z + 0.3), sc.sy(h_body, z + 0.3)),
             (sc.sx(x1 - inset, z + 0.6), sc.sy(h_roof, z + 0.6)),
             (sc.sx(x0 + inset, z + 0.6), sc.sy(h_roof, z + 0.6))]
    _fill(part, inst, [cabin], P["car_body"], cid)
    glass = [(sc.sx(x0 + 0.15, z + 0.32), sc.sy(h_body + 0.05, z + 0.32)),
             (sc.sx(x1 - 0.15, z + 0.32), sc.sy(h_body + 0.05, z + 0.32)),
             (sc.sx(x1 - inset - 0.07, z + 0.57), sc.sy(h_roof - 0.07, z + 0.57)),
             (sc.sx(x0 + inset + 0.07, z + 0.57), sc.sy(h_roof - 0.07, z + 0.57))]
    _fill(part, inst, [glass], P["car_glass"], cid)
    for lx in (x0 + 0.05, x1 - 0.3):
        _fill(part, inst, [_box(sc, lx, lx + 0.25, 0.7, 0.85, z)], P["car_light"], cid)


def _draw_person(sc, rng, part, inst, new_id, x, z):
    h = rng.uniform(1.55, 1.9)
    pid = new_id()
    stride = rng.uniform(0.0, 0.12)
    for dx in (-0.11 - stride, 0.11 + stride - 0.12):
        _fill(part, inst, [_thick_box(sc, x + dx + 0.06, 0.07, 0.0, 0.48 * h, z)], P["pants"], pid)
    _fill(part, inst, [_box(sc, x - 0.22, x + 0.22, 0.46 * h, 0.83 * h, z)], P["shirt"], pid)
    for ax in (-0.27, 0.27):
        _fill(part, inst, [_thick_box(sc, x + ax, 0.05, 0.5 * h, 0.8 * h, z)], P["shirt"], pid)
    r = 0.075 * h * sc.f / z
    cx, cy = round(sc.sx(x, z)), round(sc.sy(0.91 * h, z))
    cv2.circle(part, (cx, cy), max(1, round(r)), P["skin"], -1)
    cv2.circle(inst, (cx, cy), max(1, round(r)), pid, -1)


def _draw_pole(sc, rng, part, inst, new_id, x, z, side):
    h = rng.uniform(4.5, 8.0)
    pid = new_id()
    _fill(part, inst, [_thick_box(sc, x, 0.1, 0.0, h, z, min_px=2.0 * sc.size / 256)], P["pole"], pid)
    if rng.random() < 0.4:   # street light arm over the road
        arm = [_box(sc, min(x, x - side * 1.5), max(x, x - side * 1.5), h - 0.12, h, z)]
        _fill(part, inst, arm, P["pole"], pid)
    if rng.random() < 0.55:  # a traffic sign on the pole
        sid = new_id()
        hs = rng.uniform(2.2, 3.2)
        r = rng.uniform(0.35, 0.55)
        cx, cy, rp = sc.sx(x, z), sc.sy(hs, z), r * sc.f / z
        shape = rng.integers(3)
        if shape == 0:
            pts = [np.array([(cx + rp * np.cos(t), cy + rp * np.sin(t))
                             for t in np.linspace(0, 2 * np.pi, 20, endpoint=False)])]
            inner = [np.array([(cx + 0.6 * rp * np.cos(t), cy + 0.6 * rp * np.sin(t))
                               for t in np.linspace(0, 2 * np.pi, 20, endpoint=False)])]
        elif shape == 1:
            pts = [[(cx, cy - rp), (cx + rp, cy + 0.8 * rp), (cx - rp, cy + 0.8 * rp)]]
            inner = [[(cx, cy - 0.4 * rp), (cx + 0.5 * rp, cy + 0.5 * rp), (cx - 0.5 * rp, cy + 0.5 * rp)]]
        else:
            pts = [[(cx - rp, cy - rp), (cx + rp, cy - rp), (cx + rp, cy + rp), (cx - rp, cy + rp)]]
            inner = [[(cx - 0.7 * rp, cy - 0.7 * rp), (cx + 0.7 * rp, cy - 0.7 * rp),
                      (cx + 0.7 * rp, cy + 0.7 * rp), (cx - 0.7 * rp, cy + 0.7 * rp)]]
        _fill(part, inst, pts, P["sign"], sid)
        if rp > 2.5:
            _fill(part, inst, inner, P["sign_inner"], sid)


def _draw_tree(sc, rng, part, inst, new_id, x, z):
    tid = new_id()
    h_trunk = rng.uniform(1.8, 3.0)
    _fill(part, inst, [_thick_box(sc, x, 0.14, 0.0, h_trunk + 0.5, z)], P["trunk"], tid)
    r = rng.uniform(1.4, 2.6)
    hc = h_trunk + r * 0.8
    for _ in range(rng.integers(3, 6)):
        ox, oh = rng.uniform(-0.6, 0.6) * r, rng.uniform(-0.4, 0.5) * r
        rr = r * rng.uniform(0.55, 0.85) * sc.f / z
        c = (round(sc.sx(x + ox, z)), round(sc.sy(hc + oh, z)))
        cv2.circle(part, c, max(1, round(rr)), P["crown"], -1)
        cv2.circle(inst, c, max(1, round(rr)), tid, -1)


def _smooth_1d(rng, n, cells):
    knots = rng.standard_normal(cells + 1)
    return np.interp(np.linspace(0, cells, n), np.arange(cells + 1), knots)


def make_layout(rng, size):
    """A random street scene's label map (as parts and instances) and its geometry."""
    sc = _Scene(rng, size)
    S = size
    xs = np.arange(S, dtype=np.float32) + 0.5
    ys = (np.arange(S, dtype=np.float32) + 0.5)[:, None]
    dx = xs - sc.xv
    dy = ys - sc.yh
    part = np.full((S, S), P["sky"], np.uint8)
    inst = np.zeros((S, S), np.int32)
    new_id = itertools.count(1).__next__                # instance ids 1, 2, ...; 0 = none

    # ground plane: lateral X and depth Z of every pixel below the horizon
    below = dy > 0.5
    safe_dy = np.where(below, dy, np.nan)
    gz = sc.f * sc.hc / safe_dy * np.ones_like(xs)
    gx = sc.cam_x + dx * sc.hc / safe_dy
    walk = {s: rng.uniform(2.0, 5.0) for s in (-1, 1)}
    verge = {s: (rng.uniform(1.5, 5.0) if rng.random() < 0.45 else 0.0) for s in (-1, 1)}
    facade_x = {s: sc.road_half + walk[s] + verge[s] for s in (-1, 1)}
    side_px = np.where(gx >= 0, 1, -1)
    ax = np.abs(gx)
    walk_px = np.where(side_px > 0, walk[1], walk[-1])
    ground = np.full((S, S), P["terrain"], np.uint8)
    ground[ax < sc.road_half + walk_px] = P["sidewalk"]
    ground[ax < sc.road_half] = P["road"]
    part = np.where(np.broadcast_to(below, (S, S)), ground, part)

    # facades: a vertical plane on each side, cut into blocks (buildings or hedges) along z
    col_side = np.where(dx > 0, 1, -1)
    dist = np.where(col_side > 0, facade_x[1] - sc.cam_x, facade_x[-1] + sc.cam_x)
    z_far = 250.0
    u = np.clip(sc.f * dist / np.maximum(np.abs(dx), 1e-3), 0.5, z_far)
    block_h = np.zeros(S, np.float32)
    block_id = np.zeros(S, np.int32)
    block_hedge = np.zeros(S, bool)
    for s in (-1, 1):
        n = 40
        bounds = np.cumsum(rng.uniform(7.0, 28.0, n)) - rng.uniform(0, 20)
        heights = rng.uniform(7.0, 26.0, n + 1)
        hedge = rng.random(n + 1) < 0.18
        heights[hedge] = rng.uniform(2.5, 7.0, hedge.sum())
        ids = np.array([new_id() for _ in range(n + 1)], np.int32)
        cols = col_side == s
        k = np.searchsorted(bounds, u[cols])
        block_h[cols], block_id[cols], block_hedge[cols] = heights[k], ids[k], hedge[k]
    # irregular tops for hedges / tree lines
    block_h = block_h + block_hedge * (0.8 * _smooth_1d(rng, S, max(4, S // 12)))
    y_top = sc.yh - sc.f * (block_h - sc.hc) / u
    y_gnd = sc.yh + sc.f * sc.hc / u
    on_facade = (ys >= y_top) & (ys < y_gnd)
    part = np.where(on_facade, np.where(block_hedge, P["hedge"], P["facade"]).astype(np.uint8), part)
    inst = np.where(on_facade, block_id, inst)
    facade_v = sc.hc - dy * u / sc.f

    # objects, far to near
    objects = []
    for s in (-1, 1):
        if rng.random() < 0.55:   # a row of street trees
            z = rng.uniform(3, 12)
            xt = s * (sc.road_half + walk[s] * rng.uniform(0.55, 0.8) + verge[s] * 0.5)
            while z < 90:
                objects.append((z, _draw_tree, xt + rng.uniform(-0.2, 0.2)))
                z += rng.uniform(7, 16)
        for _ in range(rng.integers(1, 4)):
            objects.append((rng.uniform(4, 40), functools.partial(_draw_pole, side=s), s * (sc.road_half + 0.45)))
        for _ in range(rng.integers(0, 5)):
            objects.append((rng.uniform(4, 30), _draw_person,
                            s * (sc.road_half + rng.uniform(0.5, max(0.6, walk[s] - 0.4)))))
        if rng.random() < 0.6:    # parked cars along the kerb
            z = rng.uniform(3, 15)
            while z < 70:
                objects.append((z, _draw_car, s * (sc.road_half - 1.1)))
                z += rng.uniform(5.0, 14.0)
    lanes = [-sc.road_half / 2, sc.road_half / 2]
    for _ in range(rng.integers(0, 5)):
        objects.append((rng.uniform(6, 70), _draw_car, rng.choice(lanes) + rng.uniform(-0.4, 0.4)))
    objects.sort(key=lambda o: -o[0])
    for z, draw, x in objects:
        draw(sc, rng, part, inst, new_id, x, z)
    n_inst = new_id()                                   # the next id: how many ids there are, 0 included
    return Layout(part=part, inst=inst, n_inst=n_inst, ground_x=gx, ground_z=gz,
                  facade_u=u, facade_v=facade_v, facade_side=col_side, horizon=sc.yh,
                  road_half=sc.road_half)


# --- painting ---------------------------------------------------------------------------------
FACADE_COLOURS = np.array([(200, 180, 140), (150, 78, 58), (140, 138, 135), (215, 208, 195),
                           (205, 175, 105), (195, 135, 105), (105, 98, 92), (170, 160, 175)], np.float32)
CAR_COLOURS = np.array([(225, 225, 225), (25, 25, 28), (160, 162, 165), (95, 95, 100), (170, 25, 25),
                        (30, 55, 130), (20, 30, 60), (40, 90, 50), (215, 180, 40), (120, 20, 30)],
                       np.float32)
SIGN_COLOURS = np.array([(200, 25, 25), (25, 70, 170), (235, 195, 30), (235, 235, 235)], np.float32)
SKIN = np.array([(235, 195, 165), (200, 150, 115), (130, 90, 65)], np.float32)
PANTS = np.array([(35, 45, 80), (30, 30, 32), (100, 100, 105), (175, 160, 125)], np.float32)


def _noise(rng, size, cells):
    """Smooth noise, unit-ish variance, `cells` features across the image."""
    small = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


@np.errstate(invalid="ignore")                 # ground and facade coordinates are nan off their planes
def paint(layout, rng):
    """A photo of `layout`: per-part colour and texture, lighting, noise and blur."""
    part, inst = layout.part, layout.inst
    S = part.shape[0]
    fine = rng.standard_normal((S, S)).astype(np.float32)
    mid = _noise(rng, S, max(4, S // 8))
    low = _noise(rng, S, 5)
    base = np.zeros((S, S, 3), np.float32)
    tex = np.zeros((S, S), np.float32)           # multiplicative texture, 0 = none

    def where(name):
        return part == P[name]

    # per-instance random colours (cars, shirts, signs, facades)
    r = rng.random((layout.n_inst, 4)).astype(np.float32)
    pick = lambda table, col: table[(r[:, col] * len(table)).astype(int) % len(table)]  # noqa: E731
    jitter = 1 + 0.12 * (r[:, 3:4] - 0.5)
    inst_facade = pick(FACADE_COLOURS, 0) * jitter
    inst_car = pick(CAR_COLOURS, 1) * jitter
    inst_shirt = 40 + 200 * rng.random((layout.n_inst, 3)).astype(np.float32)
    inst_sign = pick(SIGN_COLOURS, 2)
    inst_sign_inner = np.where((inst_sign.sum(1, keepdims=True) > 600), (200, 25, 25), (235, 235, 235))
    inst_skin = pick(SKIN, 0)
    inst_pants = pick(PANTS, 2)
    inst_window = np.where(r[:, 2:3] < 0.5, (45, 55, 70), (100, 130, 160)) * (0.8 + 0.4 * r[:, 1:2])

    # sky: gradient and clouds, clear or overcast
    yy = (np.arange(S, dtype=np.float32)[:, None] / S) * np.ones((1, S), np.float32)
    t = np.clip(yy / max(layout.horizon / S, 0.2), 0, 1)[..., None]
    if rng.random() < 0.75:
        top, hor = np.array([55, 115, 200]) * rng.uniform(0.85, 1.1), np.array([175, 205, 235])
    else:
        top, hor = np.array([150, 158, 172]), np.array([205, 208, 215])
    sky = top * (1 - t) + hor * t
    cloud = np.clip((mid * 0.6 + low - rng.uniform(0.3, 1.2)) * 1.5, 0, 1)[..., None]
    sky = sky * (1 - cloud) + np.array([238, 240, 244]) * cloud
    m = where("sky")
    base[m] = sky[m]

    # ground: asphalt with lane marks and a crossing, tiled sidewalk with kerb, grass
    gx, gz = layout.ground_x, layout.ground_z
    m = where("road")
    asphalt = rng.uniform(60, 105) * np.array([1.0, 1.0, rng.uniform(0.98, 1.08)])
    base[m] = asphalt
    tex[m] = 0.10
    ax = np.abs(gx)
    centre = (np.abs(gx) < 0.07) & (np.mod(gz, 9.0) < 4.0)
    edge = np.abs(ax - (layout.road_half - 0.3)) < 0.07
    zc = rng.uniform(8, 30)
    crossing = (rng.random() < 0.3) & (gz > zc) & (gz < zc + 3.0) & (np.mod(gx, 1.0) < 0.5)
    marks = m & (centre | edge | crossing)
    base[marks] = np.array([215, 215, 205]) * rng.uniform(0.8, 1.0)
    m = where("sidewalk")
    paving = rng.uniform(125, 175) * np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.88, 1.0)])
    base[m] = paving
    tile = rng.uniform(0.3, 0.6)
    joints = (np.mod(gx, tile) < 0.03) | (np.mod(gz, tile) < 0.03 * np.maximum(gz / 6, 1))
    base[m & joints] *= 0.82
    base[m & (ax < layout.road_half + 0.18)] = paving * 1.12
    tex[m] = 0.06
    m = where("terrain")
    dry = rng.uniform(0, 1)
    grass = np.array([125, 160, 60]) * (1 - dry) + np.array([170, 160, 90]) * dry
    mown = 1 + 0.08 * np.sign(np.sin(gz * rng.uniform(1.5, 3.0)))   # mowing stripes
    base[m] = grass * mown[m][:, None]
    tex[m] = 0.14

    # facades: block colour, window grid in facade coordinates, a shop floor
    m = where("facade")
    base[m] = inst_facade[inst[m]]
    u = layout.facade_u[None, :] * np.ones((S, 1), np.float32)
    v = layout.facade_v
    floor_h, win_w = rng.uniform(2.8, 3.6), rng.uniform(0.35, 0.6)
    bay = rng.uniform(2.2, 3.8)
    window = (np.mod(v, floor_h) > 0.9) & (np.mod(v, floor_h) < floor_h - 0.5) & \
             (np.mod(u, bay) < bay * win_w) & (v > 3.2)
    shop = v < 3.2
    base[m & window] = inst_window[inst[m & window]]
    base[m & shop] *= rng.uniform(0.55, 0.8)
    base[m & shop & (np.mod(u, 6.0) < 4.0) & (v > 0.4) & (v < 2.6)] = (60, 70, 80)
    tex[m] = 0.05

    # vegetation: blotchy green foliage, brown trunks
    veg = np.array([55, 90, 35]) * rng.uniform(0.8, 1.2) + np.array([0, 0, 0])
    for name in ("hedge", "crown"):
        m = where(name)
        light = np.clip(0.85 + 0.35 * mid[m] + 0.25 * fine[m], 0.35, 1.6)[:, None]
        base[m] = veg * light * np.array([1.0, 1.0 + 0.1 * rng.standard_normal(), 1.0])
    m = where("trunk")
    base[m] = (75, 58, 42)
    tex[m] = 0.1

    # street furniture and objects
    m = where("pole")
    base[m] = np.array([120, 122, 125]) * rng.uniform(0.6, 1.2)
    tex[m] = 0.05
    for name, colours in (("sign", inst_sign), ("sign_inner", inst_sign_inner), ("car_body", inst_car),
                          ("shirt", inst_shirt), ("skin", inst_skin), ("pants", inst_pants)):
        m = where(name)
        base[m] = colours[inst[m]]
    base[where("car_glass")] = np.array([35, 42, 52]) + 40 * rng.random()
    base[where("car_wheel")] = (22, 22, 24)
    base[where("car_light")] = (190, 25, 25)
    tex[where("car_body")] = 0.03

    # texture grain, light: global gain, colour cast, sun-side shading, cast shadow, vignette
    photo = base * (1 + tex * (fine + 0.6 * mid))[..., None]
    sun = rng.choice((-1, 1))
    is_facade = where("facade") | where("hedge")
    side_gain = np.where(layout.facade_side[None, :] == sun, rng.uniform(1.0, 1.15), rng.uniform(0.7, 0.9))
    photo[is_facade] *= np.broadcast_to(side_gain, (S, S))[is_facade][:, None]
    shadow = (gx * -sun > layout.road_half * rng.uniform(-0.6, 1.2) + 0.15 * mid) & \
        (PART_CLASS[part] <= TERRAIN) & (PART_CLASS[part] != BUILDING)
    photo[shadow] *= rng.uniform(0.55, 0.8)
    gain = rng.uniform(0.7, 1.25) * np.clip(1 + rng.normal(0, 0.06, 3), 0.85, 1.15)
    yy2, xx2 = np.mgrid[0:S, 0:S].astype(np.float32) / S - 0.5
    vignette = 1 - rng.uniform(0.1, 0.35) * (xx2 ** 2 + yy2 ** 2)
    photo = photo * gain * (vignette * (1 + 0.06 * low))[..., None]
    sigma = rng.uniform(0.3, 0.8) * S / 256
    photo = cv2.GaussianBlur(photo, (0, 0), sigma)
    photo += rng.normal(0, rng.uniform(1.5, 5.0), photo.shape).astype(np.float32)
    return np.clip(photo + 0.5, 0, 255).astype(np.uint8)


def render_frame(seed, index, size=256):
    """Frame `index` of SynthCity `seed`: (trainIds HxW uint8, photo HxWx3 uint8). Pure function."""
    layout_rng = np.random.default_rng([seed, index, 0])
    paint_rng = np.random.default_rng([seed, index, 1])
    layout = make_layout(layout_rng, size)
    return layout.labels, paint(layout, paint_rng)


# --- writing the prepared layout --------------------------------------------------------------
def frame_id(index):
    return f"{NAME}_{index:07d}"


def _write_frames(job):
    """Render and write the frames of one chunk (runs in a worker). Returns frames written."""
    root, split, indices, size, seed = job
    cv2.setNumThreads(1)
    layout = PreparedLayout(root)
    palette = cityscapes_classes()[1]
    lut = np.zeros((256, 3), np.uint8)                     # trainId -> its Cityscapes colour
    lut[:len(palette)] = palette
    written = 0
    for index in indices:
        fid = frame_id(index)
        pair_path, label_path = layout.pair_path(split, fid), layout.label_path(split, fid)
        if decoded_size(pair_path) == (2 * size, size) and decoded_size(label_path) == (size, size):
            continue                                         # a re-run keeps only frames it can read
        labels, photo = render_frame(seed, index, size)
        atomic.save_image(label_path, Image.fromarray(labels, mode="L"))
        pair = np.concatenate([lut[labels], photo], axis=1)
        atomic.save_image(pair_path, Image.fromarray(pair), quality=100, subsampling=0)
        written += 1
    return written


def generate(output_dir, *, num_train=2000, num_val=500, size=256, seed=0, workers=None, log=print):
    """Write SynthCity in the prepared layout under `output_dir` (skipping frames already there);
    metadata.json last. Returns output_dir."""
    if num_train < 1 or num_val < 1:
        raise UserError(f"SynthCity needs at least one frame per split (got --num_train {num_train}, "
                        f"--num_val {num_val})")
    if size < 32 or size % 4:
        raise UserError(f"--size {size} must be a multiple of 4 and at least 32")
    params = {"generator_version": GENERATOR_VERSION, "seed": seed, "size": size}
    make_output_dir(output_dir)
    check_same_params(output_dir, PARAMS_FILE, params, "SynthCity")
    splits = {"train": range(0, num_train), "val": range(VAL_INDEX_OFFSET, VAL_INDEX_OFFSET + num_val)}
    layout = PreparedLayout(output_dir)
    for split, ids in splits.items():                    # frames of a larger earlier run would be trained on
        try:
            found = layout.frame_ids(split)
        except UserError:                                # no frames yet
            found = []
        extra = sorted(set(found) - {frame_id(i) for i in ids})
        if extra:
            raise UserError(f"{output_dir} holds {len(extra)} {split} frames beyond the {len(ids)} asked for "
                            f"(e.g. {extra[0]}); choose another --output_dir or delete it")
    chunk = 16
    jobs = [(output_dir, split, list(ids[i:i + chunk]), size, seed)
            for split, ids in splits.items() for i in range(0, len(ids), chunk)]
    run_jobs(_write_frames, jobs, workers, f"SynthCity -> {output_dir}", frames=lambda job: len(job[2]))
    names, palette = cityscapes_classes()
    PreparedLayout(output_dir).write_meta(DatasetMeta(
        name=NAME, classes=names, palette=palette, image_size=[size, size], label_size=[size, size],
        splits={"train": num_train, "val": num_val},
        segmenters=[f"checkpoints/segmenters/synthcity_{size}px"],   # trained by fcn_score.py on first use
        ignore_index=IGNORE_INDEX,
        source={**params, "num_train": num_train, "num_val": num_val,
                "classes_drawn": [names[c] for c in CLASSES_DRAWN],
                "frame_ids": f"{NAME}_<index:07d>, train 0.., val {VAL_INDEX_OFFSET}.."}))
    log(f"SynthCity: {num_train} train + {num_val} val frames of {size}x{size} in {output_dir}")
    return output_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output_dir", required=True, help="where to write the prepared dataset")
    parser.add_argument("--num_train", type=int, default=2000)
    parser.add_argument("--num_val", type=int, default=500)
    parser.add_argument("--size", type=int, default=256, help="height = width of each image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    generate(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    run_cli(main)
