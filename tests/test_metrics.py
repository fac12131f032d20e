"""Property tests of the probe metrics (walt_paper.metrics): every metric stays within its range,
a perfect prediction gets the perfect score, reordering the examples changes nothing, numpy and
torch inputs agree, and a badly shaped argument raises a ValueError that names it. The
hand-computed cases and the comparison with the TAP-Vid reference formulas are in
nbs/03a_metrics.ipynb."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from walt_paper.metrics import (box_iou, box_tracking_metrics, camera_pose_metrics, depth_metrics, matrix_to_rotation_6d,
                                point_track_metrics, relative_poses, rotation_6d_to_matrix, top1_accuracy)

PROPERTY = settings(max_examples=30, deadline=None)
finite = dict(allow_nan=False, allow_infinity=False)


def in_range(value, low, high):
    "True for a number in [low, high] (a metric with nothing to average over may be NaN)."
    return math.isnan(value) or low <= value <= high


def permuted(rng, *arrays):
    "The arrays reordered along their first axis by one random permutation."
    order = rng.permutation(len(arrays[0]))
    return [a[order] for a in arrays]


# ---------------------------------------------------------------- strategies

@st.composite
def classification(draw):
    n, classes = draw(st.integers(1, 12)), draw(st.integers(1, 6))
    logits = draw(hnp.arrays(np.float64, (n, classes), elements=st.floats(-5, 5, **finite)))
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, classes - 1)))
    return logits, labels


@st.composite
def depth_maps(draw):
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    gt = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.05, 50, **finite)))
    pred = draw(hnp.arrays(np.float64, shape, elements=st.floats(0.05, 50, **finite)))
    valid = draw(hnp.arrays(bool, shape))
    valid.reshape(shape[0], -1)[:, 0] = True                     # every image keeps a valid pixel
    return pred, gt, valid


def rotations(rng, n):
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    return q


def poses(rng, clips, frames, scale=1.0):
    n = clips * frames
    T = np.tile(np.eye(4), (n, 1, 1))
    T[:, :3, :3], T[:, :3, 3] = rotations(rng, n), scale * rng.normal(size=(n, 3))
    return T.reshape(clips, frames, 4, 4)


@st.composite
def pose_pairs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    clips, frames = draw(st.integers(1, 4)), draw(st.integers(2, 6))
    scale = draw(st.sampled_from([0.0, 1e-8, 1.0, 100.0]))     # 0: no translation at all
    return relative_poses(poses(rng, clips, frames, scale)), relative_poses(poses(rng, clips, frames, scale))


@st.composite
def point_tracks(draw):
    n, points, frames = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(2, 6))
    coords = st.floats(-20, 300, **finite)
    gt = draw(hnp.arrays(np.float64, (n, points, frames, 2), elements=coords))
    pred = draw(hnp.arrays(np.float64, (n, points, frames, 2), elements=coords))
    gt_visible, pred_visible = draw(hnp.arrays(bool, (n, points, frames))), draw(hnp.arrays(bool, (n, points, frames)))
    query = draw(hnp.arrays(np.int64, (n, points), elements=st.integers(0, frames - 2)))
    size = draw(st.sampled_from([None, 64, (48, 80)]))
    return pred, pred_visible, gt, gt_visible, query, size


def boxes(draw, shape):
    corners = draw(hnp.arrays(np.float64, shape + (2, 2), elements=st.floats(0, 64, **finite)))
    return np.concatenate([corners.min(-2), corners.max(-2)], -1)  # (..., 4) with x0 <= x1, y0 <= y1


@st.composite
def box_tracks(draw):
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(2, 5)))
    visible = draw(hnp.arrays(bool, shape))
    visible[..., 0, 1] = True                                     # something to score after the query frame
    return boxes(draw, shape), boxes(draw, shape), visible


# ---------------------------------------------------------------- ranges

@PROPERTY
@given(classification())
def test_accuracy_in_range(case):
    logits, labels = case
    assert 0 <= top1_accuracy(logits, labels) <= 1
    assert top1_accuracy(logits, labels) == top1_accuracy(logits.argmax(1), labels)


@PROPERTY
@given(depth_maps(), st.sampled_from(['none', 'median', 'least_squares']))
def test_depth_in_range(case, align):
    pred, gt, valid = case
    out = depth_metrics(pred, gt, valid, align=align)
    assert out['abs_rel'] >= 0 and out['rmse'] >= 0 and 0 <= out['delta1'] <= 1


@PROPERTY
@given(pose_pairs())
def test_pose_in_range(case):
    pred, gt = case
    out = camera_pose_metrics(pred, gt)
    assert 0 <= out['rotation_error_deg'] <= 180 and out['translation_error'] >= 0
    assert in_range(out['translation_angle_deg'], 0, 180)


@PROPERTY
@given(point_tracks(), st.sampled_from(['first', 'strided']))
def test_tapvid_in_range(case, mode):
    pred, pred_visible, gt, gt_visible, query, size = case
    out = point_track_metrics(pred, pred_visible, gt, gt_visible, size=size, query_frames=query, query_mode=mode)
    assert len(out) == 13 and all(in_range(v, 0, 1) for v in out.values())
    # thresholds are nested: a point within 1 is within 2, and so on
    within = [out[f'pts_within_{t}'] for t in (1, 2, 4, 8, 16)]
    assert all(a <= b for a, b in zip(within, within[1:]) if not (math.isnan(a) or math.isnan(b)))


@PROPERTY
@given(box_tracks())
def test_boxes_in_range(case):
    pred, gt, visible = case
    iou = box_iou(pred, gt)
    assert iou.shape == pred.shape[:-1] and ((0 <= iou) & (iou <= 1)).all()
    assert np.allclose(iou, box_iou(gt, pred))                   # symmetric
    out = box_tracking_metrics(pred, gt, visible)
    assert 0 <= out['mean_iou'] <= 1 and 0 <= out['success_50'] <= 1


# ---------------------------------------------------------------- perfect predictions

@PROPERTY
@given(classification())
def test_accuracy_perfect(case):
    _, labels = case
    assert top1_accuracy(labels, labels) == 1
    assert top1_accuracy(np.eye(labels.max() + 1)[labels], labels) == 1   # one-hot logits


@PROPERTY
@given(depth_maps(), st.sampled_from(['none', 'median', 'least_squares']))
def test_depth_perfect(case, align):
    _, gt, valid = case
    out = depth_metrics(gt, gt, valid, align=align)
    assert out['abs_rel'] == pytest.approx(0, abs=1e-9) and out['rmse'] == pytest.approx(0, abs=1e-7) and out['delta1'] == 1


@PROPERTY
@given(pose_pairs())
def test_pose_perfect(case):
    _, gt = case
    out = camera_pose_metrics(gt, gt)
    assert out['rotation_error_deg'] == 0 and out['translation_error'] == 0
    assert math.isnan(out['translation_angle_deg']) or out['translation_angle_deg'] == pytest.approx(0, abs=1e-6)
    # the same in float32, as the world stores cameras
    assert camera_pose_metrics(gt.astype(np.float32), gt.astype(np.float32))['rotation_error_deg'] == 0


@PROPERTY
@given(point_tracks(), st.sampled_from(['first', 'strided']))
def test_tapvid_perfect(case, mode):
    _, _, gt, gt_visible, query, size = case
    gt_visible[0, 0, -1] = True                                  # at least one scored visible point
    out = point_track_metrics(gt, gt_visible, gt, gt_visible, size=size, query_frames=query, query_mode=mode)
    assert all(v == 1 for v in out.values()), out


@PROPERTY
@given(box_tracks())
def test_boxes_perfect(case):
    _, gt, visible = case
    assert box_tracking_metrics(gt, gt, visible) == dict(mean_iou=1.0, success_50=1.0)


# ---------------------------------------------------------------- order of examples, numpy vs torch

@PROPERTY
@given(classification(), st.integers(0, 2**32 - 1))
def test_accuracy_permutation(case, seed):
    logits, labels = case
    assert top1_accuracy(*permuted(np.random.default_rng(seed), logits, labels)) == top1_accuracy(logits, labels)
    assert top1_accuracy(torch.tensor(logits), torch.tensor(labels)) == top1_accuracy(logits, labels)


@PROPERTY
@given(depth_maps(), st.sampled_from(['none', 'median', 'least_squares']), st.integers(0, 2**32 - 1))
def test_depth_permutation(case, align, seed):
    out = depth_metrics(*case, align=align)
    assert depth_metrics(*permuted(np.random.default_rng(seed), *case), align=align) == pytest.approx(out)
    assert depth_metrics(*map(torch.tensor, case), align=align) == pytest.approx(out)


@PROPERTY
@given(pose_pairs(), st.integers(0, 2**32 - 1))
def test_pose_permutation(case, seed):
    out = camera_pose_metrics(*case)
    assert camera_pose_metrics(*permuted(np.random.default_rng(seed), *case)) == pytest.approx(out, nan_ok=True)
    assert camera_pose_metrics(*map(torch.tensor, case)) == pytest.approx(out, nan_ok=True)


@PROPERTY
@given(point_tracks(), st.integers(0, 2**32 - 1))
def test_tapvid_permutation(case, seed):
    pred, pred_visible, gt, gt_visible, query, size = case
    out = point_track_metrics(pred, pred_visible, gt, gt_visible, size=size, query_frames=query)
    rng = np.random.default_rng(seed)
    videos = permuted(rng, pred, pred_visible, gt, gt_visible, query)
    assert point_track_metrics(*videos[:4], size=size, query_frames=videos[4]) == pytest.approx(out, nan_ok=True)
    points = [np.swapaxes(a, 0, 1) for a in permuted(rng, *[np.swapaxes(a, 0, 1) for a in (pred, pred_visible, gt, gt_visible, query)])]
    assert point_track_metrics(*points[:4], size=size, query_frames=points[4]) == pytest.approx(out, nan_ok=True)
    tensors = [torch.tensor(a) for a in (pred, pred_visible, gt, gt_visible, query)]
    assert point_track_metrics(*tensors[:4], size=size, query_frames=tensors[4]) == pytest.approx(out, nan_ok=True)


@PROPERTY
@given(box_tracks(), st.integers(0, 2**32 - 1))
def test_boxes_permutation(case, seed):
    out = box_tracking_metrics(*case)
    assert box_tracking_metrics(*permuted(np.random.default_rng(seed), *case)) == pytest.approx(out)
    assert box_tracking_metrics(*map(torch.tensor, case)) == pytest.approx(out)


# ---------------------------------------------------------------- rotations and relative poses

@PROPERTY
@given(st.integers(0, 2**32 - 1))
def test_rotation_6d_round_trip(seed):
    rng = np.random.default_rng(seed)
    R = rotations(rng, 5)
    assert np.allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(R)), R)
    M = rotation_6d_to_matrix(torch.tensor(rng.normal(size=(5, 6))))
    assert torch.allclose(M.transpose(-1, -2) @ M, torch.eye(3, dtype=M.dtype)) and torch.allclose(torch.linalg.det(M), torch.ones(5, dtype=M.dtype))


@PROPERTY
@given(st.integers(0, 2**32 - 1))
def test_relative_poses_ignore_the_world_frame(seed):
    rng = np.random.default_rng(seed)
    c2w, world = poses(rng, 2, 4), poses(rng, 1, 1)[0, 0]
    assert np.allclose(relative_poses(world @ c2w), relative_poses(c2w))
    assert np.allclose(relative_poses(c2w)[:, 0], np.eye(4))


# ---------------------------------------------------------------- bad shapes name the argument

P, PV, G, GV = np.zeros((2, 3, 4, 2)), np.ones((2, 3, 4), bool), np.zeros((2, 3, 4, 2)), np.ones((2, 3, 4), bool)
REL = relative_poses(poses(np.random.default_rng(0), 2, 3))
BOX, BOX_VISIBLE = np.tile([0., 0, 2, 2], (2, 3, 4, 1)), np.ones((2, 3, 4), bool)

BAD_SHAPES = [
    ('logits_or_pred', lambda: top1_accuracy(np.zeros((3, 2, 1)), np.zeros(3, int))),
    ('labels', lambda: top1_accuracy(np.zeros((3, 2)), np.zeros(4, int))),
    ('labels', lambda: top1_accuracy(np.zeros(3, int), np.zeros((3, 1), int))),
    ('logits_or_pred', lambda: top1_accuracy(np.zeros((2, 0)), np.zeros(2, int))),      # no classes
    ('pred', lambda: depth_metrics(np.ones(5), np.ones(5))),
    ('gt', lambda: depth_metrics(np.ones((2, 4, 4)), np.ones((2, 4, 5)))),
    ('valid', lambda: depth_metrics(np.ones((2, 4, 4)), np.ones((2, 4, 4)), np.ones((2, 4), bool))),
    ('pred', lambda: camera_pose_metrics(REL[0], REL)),
    ('pred', lambda: camera_pose_metrics(np.zeros((2, 3, 4, 3)), REL)),
    ('gt', lambda: camera_pose_metrics(REL, REL[:, :2])),
    ('c2w', lambda: relative_poses(np.zeros((3, 3)))),
    ('x', lambda: rotation_6d_to_matrix(np.zeros((2, 5)))),
    ('matrix', lambda: matrix_to_rotation_6d(np.zeros((2, 4, 4)))),
    ('pred_tracks', lambda: point_track_metrics(P[..., :1], PV, G, GV)),
    ('pred_visible', lambda: point_track_metrics(P, PV[0], G, GV)),
    ('gt_tracks', lambda: point_track_metrics(P, PV, G[:, :2], GV)),
    ('gt_visible', lambda: point_track_metrics(P, PV, G, GV[..., :3])),
    ('query_frames', lambda: point_track_metrics(P, PV, G, GV, query_frames=np.zeros((2, 3, 1), int))),
    ('a', lambda: box_iou(np.zeros(3), np.zeros(4))),
    ('b', lambda: box_iou(np.zeros((2, 4)), np.zeros((3, 4)))),
    ('pred_boxes', lambda: box_tracking_metrics(BOX[..., :3], BOX, BOX_VISIBLE)),
    ('gt_boxes', lambda: box_tracking_metrics(BOX, BOX[:1], BOX_VISIBLE)),
    ('gt_visible', lambda: box_tracking_metrics(BOX, BOX, BOX_VISIBLE[..., :3])),
]


@pytest.mark.parametrize('argument, call', BAD_SHAPES, ids=[f'{i}-{name}' for i, (name, _) in enumerate(BAD_SHAPES)])
def test_bad_shape_names_the_argument(argument, call):
    with pytest.raises(ValueError, match=rf'^{argument} has shape \(.*\); expected'):
        call()


# ---------------------------------------------------------------- fuzzed shapes: a result or a ValueError naming an argument

ARGUMENTS = {      # metric -> its array arguments and a value that is valid wherever the shapes are
    top1_accuracy: dict(logits_or_pred=1.0, labels=0),
    depth_metrics: dict(pred=1.0, gt=1.0, valid=True),
    camera_pose_metrics: dict(pred='identity', gt='identity'),
    relative_poses: dict(c2w='identity'),
    rotation_6d_to_matrix: dict(x=1.0),
    matrix_to_rotation_6d: dict(matrix=1.0),
    point_track_metrics: dict(pred_tracks=1.0, pred_visible=True, gt_tracks=1.0, gt_visible=True, query_frames=0),
    box_iou: dict(a=1.0, b=1.0),
    box_tracking_metrics: dict(pred_boxes=1.0, gt_boxes=1.0, gt_visible=True),
}


@st.composite
def shape_sets(draw, names):
    "A shape of rank 0..5 per argument, their axes drawn from a few shared sizes (0 included) so that they often agree."
    sizes = draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)) + [2, 3, 4, 6]
    return {name: tuple(draw(st.lists(st.sampled_from(sizes), max_size=5), label=name)) for name in names}


def filled(shape, value, as_torch):
    if value == 'identity':   # poses: the identity where the last two axes allow it, so only the shapes can be wrong
        a = np.broadcast_to(np.eye(4)[:shape[-2], :shape[-1]], shape).copy() if len(shape) >= 2 and shape[-2:] in ((4, 4), (3, 4)) else np.zeros(shape)
    else: a = np.full(shape, value)
    return torch.tensor(a) if as_torch else a


@pytest.mark.parametrize('metric', ARGUMENTS, ids=[m.__name__ for m in ARGUMENTS])
@settings(max_examples=400, deadline=None)
@given(data=st.data(), as_torch=st.booleans())
def test_fuzzed_shapes_raise_naming_an_argument(metric, data, as_torch):
    "Any shapes of any rank (empty axes included): a result, or a ValueError naming an argument - never numpy's or torch's own."
    drawn = data.draw(shape_sets(list(ARGUMENTS[metric])))
    arrays = {name: filled(drawn[name], value, as_torch) for name, value in ARGUMENTS[metric].items()}
    try: metric(**arrays)
    except ValueError as e:
        assert any(name in str(e) for name in arrays), f"{metric.__name__}{ {k: tuple(v.shape) for k, v in arrays.items()} }: {e}"
