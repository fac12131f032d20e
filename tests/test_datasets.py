"""Bad inputs to the data loaders, each with an error that names the bad thing and what is valid,
and property tests that fuzz the file formats (RealEstate10K lines, bytes given as videos,
images and pickles, random label CSVs). The fixtures are written by the tests into temporary
folders; nothing here needs the network."""
import csv, io, pickle, re
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from walt_paper import datasets as ds
from walt_paper.data import thread_map
from walt_paper.sources import read_idx, read_video

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------- fixtures written in each format

def write_video(path, frames=12, size=(32, 24), fourcc='mp4v', seed=0):
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, size)
    for _ in range(frames): writer.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return Path(path)


@pytest.fixture
def kinetics(tmp_path):
    "A Kinetics-style folder: two videos and a labels CSV."
    tmp_path = tmp_path/'kinetics'; tmp_path.mkdir()
    write_video(tmp_path/'a.mp4'); write_video(tmp_path/'b.mp4', seed=1)
    (tmp_path/'labels.csv').write_text('path,label\na.mp4,run\nb.mp4,jump\n')
    return tmp_path


@pytest.fixture
def imagenet(tmp_path):
    "An ImageNet-style folder: one image in each of two classes."
    tmp_path = tmp_path/'imagenet'; tmp_path.mkdir()
    for c in ('cat', 'dog'):
        (tmp_path/c).mkdir()
        Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(tmp_path/c/'0.png')
    return tmp_path


@pytest.fixture
def nyu(tmp_path):
    "An NYU-style folder: one colour image and its 16-bit depth in millimetres."
    tmp_path = tmp_path/'nyu'; tmp_path.mkdir()
    (tmp_path/'rgb').mkdir(); (tmp_path/'depth').mkdir()
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(tmp_path/'rgb'/'a.png')
    cv2.imwrite(str(tmp_path/'depth'/'a.png'), np.full((24, 32), 1000, np.uint16))
    return tmp_path


def camera_line(timestamp=0, world_to_camera=np.eye(4)[:3], intrinsics=(0.5, 0.9, 0.5, 0.5)):
    return ' '.join(map(str, [timestamp, *intrinsics, 0, 0, *np.asarray(world_to_camera).reshape(-1)]))


def test_fixtures_load(kinetics, imagenet, nyu):
    "The fixtures are valid, so the failures below come from the one thing each test breaks."
    assert ds.video_folder(kinetics, kinetics/'labels.csv', frames=5, size=8)['video'].shape == (2, 5, 8, 8, 3)
    assert ds.image_folder(imagenet, size=8)['image'].shape == (2, 8, 8, 3)
    assert ds.depth_pairs(nyu, size=8)['depth'].shape == (1, 8, 8)


# ---------------------------------------------------------------- missing and empty files

@pytest.mark.parametrize('load', [
    lambda p: ds.image_folder(p),
    lambda p: ds.video_folder(p.parent, p),
    lambda p: ds.depth_pairs(p),
    lambda p: ds.tapvid_pickle(p),
    lambda p: ds.realestate10k_cameras(p),
    lambda p: read_video(p),
    lambda p: ds.read_image(p),
    lambda p: ds.read_depth(p),
    lambda p: read_idx(p),
], ids=['image_folder', 'video_folder', 'depth_pairs', 'tapvid', 'realestate10k', 'video', 'image', 'depth', 'idx'])
def test_missing_file_names_the_path(tmp_path, load):
    missing = tmp_path/'no-such-thing'
    with pytest.raises(FileNotFoundError, match='no-such-thing'): load(missing)


@pytest.mark.parametrize('name, load, message', [
    ('labels.csv', lambda p: ds.video_folder(p.parent, p), 'empty'),
    ('tracks.pkl', ds.tapvid_pickle, 'empty'),
    ('cameras.txt', ds.realestate10k_cameras, 'empty'),
    ('clip.mp4', read_video, 'empty'),
    ('photo.png', ds.read_image, 'empty'),
    ('depth.png', ds.read_depth, 'empty'),
    ('depth.npy', ds.read_depth, 'empty'),
    ('x.idx', read_idx, 'not an IDX file'),
])
def test_empty_file(tmp_path, name, load, message):
    (tmp_path/name).write_bytes(b'')
    with pytest.raises(ValueError, match=message) as err: load(tmp_path/name)
    assert name in str(err.value)


# ---------------------------------------------------------------- videos

def test_truncated_video(kinetics):
    whole = (kinetics/'a.mp4').read_bytes()
    (kinetics/'a.mp4').write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match=r'a\.mp4 is not a readable video.*truncated'):
        ds.video_folder(kinetics, kinetics/'labels.csv', frames=5, size=8)


# Containers a cut file of which decoders play to where it stops, the last frame partly garbage (AVI, Matroska), or
# refuse (MP4, MOV, whose index is written last): either way a cut file is refused as truncated, by name.
CONTAINERS = [('MJPG', '.avi'), ('XVID', '.avi'), ('mp4v', '.mp4'), ('mp4v', '.mov'), ('MJPG', '.mkv')]


@pytest.mark.parametrize('fourcc, suffix', CONTAINERS, ids=[f'{f}{s}' for f, s in CONTAINERS])
@pytest.mark.parametrize('keep', [0.3, 0.8, 0.99])
def test_truncated_video_in_any_container(kinetics, fourcc, suffix, keep):
    whole = write_video(kinetics/f'whole{suffix}', frames=20, fourcc=fourcc).read_bytes()
    assert ds.video_truncation(kinetics/f'whole{suffix}') is None
    (kinetics/f'cut{suffix}').write_bytes(whole[:int(len(whole) * keep)])
    (kinetics/'labels.csv').write_text(f'path,label\na.mp4,run\ncut{suffix},jump\n')
    with pytest.raises(ValueError, match=rf'cut\{suffix} is not a readable video: it is truncated \(.*; named on line 3 of '
                                         rf'.*labels\.csv\); valid videos are complete files'):
        ds.video_folder(kinetics, kinetics/'labels.csv', frames=5, size=8)


@pytest.fixture(scope='module')
def whole_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('whole-videos')
    return {(fourcc, suffix): write_video(folder/f'{fourcc}{suffix}', frames=12, fourcc=fourcc).read_bytes() for fourcc, suffix in CONTAINERS}


@FUZZ
@given(container=st.sampled_from(CONTAINERS), cut=st.floats(0, 1, exclude_max=True))
def test_video_cut_anywhere_is_refused_by_name(kinetics, whole_videos, container, cut):
    "A video cut at any byte never loads (no frames from past its end, no decoder trace alone): the error names the file."
    suffix, whole = container[1], whole_videos[container]
    (kinetics/f'cut{suffix}').write_bytes(whole[:int(len(whole) * cut)])
    (kinetics/'labels.csv').write_text(f'path,label\ncut{suffix},jump\n')
    with pytest.raises(ValueError, match=rf'cut\{suffix} (is not a readable video|is empty)'):
        ds.video_folder(kinetics, kinetics/'labels.csv', frames=5, size=8)


@pytest.mark.parametrize('content', [b'just some text\n', b'\x89PNG\r\n\x1a\n' + bytes(64), bytes(1000)], ids=['text', 'png-header', 'zeros'])
def test_non_video_given_as_video(kinetics, content):
    (kinetics/'b.mp4').write_bytes(content)
    with pytest.raises(ValueError, match=r'b\.mp4 is not a readable video'):
        ds.video_folder(kinetics, kinetics/'labels.csv', frames=5, size=8)


def test_image_given_as_video(kinetics):
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(kinetics/'still.png')
    (kinetics/'b.mp4').write_bytes((kinetics/'still.png').read_bytes())
    with pytest.raises(ValueError, match=r'b\.mp4'): ds.video_folder(kinetics, kinetics/'labels.csv', frames=5, size=8)


def test_labels_csv_naming_missing_videos(kinetics):
    (kinetics/'labels.csv').write_text('path,label\na.mp4,run\ngone.mp4,jump\nalso-gone.mp4,jump\n')
    with pytest.raises(FileNotFoundError, match=r'2 video\(s\) that do not exist.*line 3.*gone\.mp4'):
        ds.video_folder(kinetics, kinetics/'labels.csv', frames=5, size=8)


@pytest.mark.parametrize('header, missing', [('file,label', "['path']"), ('path,class', "['label']"), ('video', "['path', 'label']")])
def test_labels_csv_missing_columns(kinetics, header, missing):
    (kinetics/'labels.csv').write_text(f'{header}\na.mp4,run\n')
    with pytest.raises(ValueError, match=rf"lacks column\(s\) {re.escape(missing)}.*header is"):
        ds.video_folder(kinetics, kinetics/'labels.csv', frames=5, size=8)


def test_labels_csv_header_only_and_empty_cells(kinetics):
    (kinetics/'labels.csv').write_text('path,label\n')
    with pytest.raises(ValueError, match='no rows'): ds.video_folder(kinetics, kinetics/'labels.csv')
    (kinetics/'labels.csv').write_text('path,label\na.mp4,\n')
    with pytest.raises(ValueError, match=r"line 2: empty \['label'\]"): ds.video_folder(kinetics, kinetics/'labels.csv')


def test_labels_outside_given_classes(kinetics):
    with pytest.raises(ValueError, match=r"label\(s\) \['run'\] not in classes"):
        ds.video_folder(kinetics, kinetics/'labels.csv', frames=5, size=8, classes=['jump'])


# ---------------------------------------------------------------- shapes and counts

@pytest.mark.parametrize('frames', [0, 2, 16, 18, -1, 4.0, True])
def test_frames_not_one_plus_4k(kinetics, frames):
    for call in (lambda: ds.video_folder(kinetics, kinetics/'labels.csv', frames=frames, size=8),
                 lambda: ds.arrow_of_time(4, frames=frames), lambda: ds.playback_speed(4, frames=frames)):
        with pytest.raises(ValueError, match=r'frames=.* is not of the form 1 \+ 4k'): call()


@pytest.mark.parametrize('size', [0, 12, 30, -8, 33])
def test_size_not_multiple_of_8(kinetics, imagenet, nyu, size):
    for call in (lambda: ds.video_folder(kinetics, kinetics/'labels.csv', frames=5, size=size),
                 lambda: ds.image_folder(imagenet, size=size), lambda: ds.depth_pairs(nyu, size=size),
                 lambda: ds.arrow_of_time(4, size=size), lambda: ds.playback_speed(4, size=size),
                 lambda: ds.fashion_mnist_images('test', size=size, n=4), lambda: ds.middlebury(size),
                 lambda: ds.graffiti(size)):
        with pytest.raises(ValueError, match=r'size=.* is not a positive multiple of 8'): call()


@pytest.mark.parametrize('n', [0, -1])
def test_count_not_positive(n):
    for call in (lambda: ds.arrow_of_time(n), lambda: ds.playback_speed(n), lambda: ds.fashion_mnist_images('test', n=n)):
        with pytest.raises(ValueError, match=f'n={n} must be a positive integer'): call()


def test_stride_not_positive(kinetics):
    with pytest.raises(ValueError, match='stride=0'): ds.video_folder(kinetics, kinetics/'labels.csv', frames=5, size=8, stride=0)


@pytest.mark.parametrize('threads', [0, -2, 1.5, True])
def test_threads_not_positive(tmp_path, threads):
    "A bad `threads` is named before anything is read: here no folder or CSV exists, and that is not what is reported."
    for call in (lambda: ds.video_folder(tmp_path/'none', tmp_path/'none.csv', frames=5, size=8, threads=threads),
                 lambda: ds.image_folder(tmp_path/'none', size=8, threads=threads),
                 lambda: thread_map(len, ['a', 'b'], threads=threads)):
        with pytest.raises(ValueError, match=rf'threads={re.escape(repr(threads))} must be a positive integer'): call()


def test_thread_map_keeps_the_order_and_raises_the_first_failure():
    "Files finish out of order on several threads; the results keep the list's order, and the first failing file's error wins."
    import threading, time
    used = set()
    def read(i):   # earlier items take longer, so with several threads later ones finish first
        used.add(threading.get_ident()); time.sleep(0.02 * (6 - i))
        if i in (1, 3): raise ValueError(f'bad {i}')
        return i * 10
    assert thread_map(read, [0, 2, 4, 5], threads=3) == [0, 20, 40, 50] and len(used) > 1
    used.clear()
    assert thread_map(read, [0, 2, 4, 5], threads=1) == [0, 20, 40, 50] and len(used) == 1
    for threads in (1, 2, 4):
        with pytest.raises(ValueError, match='bad 1'): thread_map(read, [0, 1, 2, 3, 4], threads=threads)


def test_loaders_read_the_same_arrays_on_any_thread_count(tmp_path):
    "Files decoded side by side land in the order of the list, each the same array as read alone."
    videos, images = tmp_path/'videos', tmp_path/'images'
    videos.mkdir(); rows = ['path,label']
    for i in range(5):   # lengths 9..25: a middle window, and short videos that repeat their last frame
        write_video(videos/f'{i}.mp4', frames=9 + 4 * i, seed=i); rows.append(f'{i}.mp4,{"run" if i % 2 else "jump"}')
    (videos/'labels.csv').write_text('\n'.join(rows) + '\n')
    rng = np.random.default_rng(0)
    for c in ('cat', 'dog'):
        (images/c).mkdir(parents=True)
        for i in range(4): Image.fromarray(rng.integers(0, 255, (20 + i, 16 + 3 * i, 3), dtype=np.uint8)).save(images/c/f'{i}.png')
    one = ds.video_folder(videos, videos/'labels.csv', frames=9, size=8, stride=2, threads=1)
    for threads in (2, 3, 8):
        many = ds.video_folder(videos, videos/'labels.csv', frames=9, size=8, stride=2, threads=threads)
        assert all(np.array_equal(one[k], many[k]) for k in one)
    # the window the loader places by each video's length: the middle 17 frames of 25, the last frame repeated in 9
    assert np.array_equal(one['video'][4], read_video(videos/'4.mp4', 4 + np.arange(9) * 2, side=8))
    assert np.array_equal(one['video'][0], read_video(videos/'0.mp4', np.minimum(np.arange(9) * 2, 8), side=8))
    assert not np.array_equal(one['video'][0], one['video'][1])
    single = ds.image_folder(images, size=8, threads=1)
    for threads in (2, 5):
        assert all(np.array_equal(single[k], ds.image_folder(images, size=8, threads=threads)[k]) for k in single)
    assert len({a.tobytes() for a in single['image']}) == 8


# ---------------------------------------------------------------- images

@pytest.mark.parametrize('mode, channels', [('RGBA', 4), ('LA', 2)])
def test_image_with_alpha_is_refused(imagenet, mode, channels):
    Image.new(mode, (12, 12)).save(imagenet/'cat'/'bad.png')
    with pytest.raises(ValueError, match=rf'bad\.png has {channels} channels.*valid images have 3 \(RGB\), 4 \(CMYK'):
        ds.image_folder(imagenet, size=8)


def test_cmyk_jpeg_is_read_as_rgb(imagenet):
    # ImageNet's training set holds a few CMYK JPEGs; they load as RGB, as PIL converts them (torchvision's loader too)
    Image.new('CMYK', (12, 12), (0, 255, 255, 0)).save(imagenet/'cat'/'print.jpg', quality=100)
    image = ds.read_image(imagenet/'cat'/'print.jpg')
    with Image.open(imagenet/'cat'/'print.jpg') as reference: expected = np.asarray(reference.convert('RGB'))
    assert image.shape == (12, 12, 3) and np.array_equal(image, expected)
    assert image[..., 0].mean() > 200 and image[..., 1:].mean() < 60               # cyan-free, full magenta and yellow: red
    assert 'cat/print.jpg' in [str(Path(p).relative_to(imagenet)) for p in ds.image_folder(imagenet, size=8)['path']]


def test_sixteen_bit_image_is_refused(imagenet):
    cv2.imwrite(str(imagenet/'cat'/'deep.png'), np.zeros((12, 12), np.uint16))
    with pytest.raises(ValueError, match=r'deep\.png has 1 channels.*8-bit grey'): ds.image_folder(imagenet, size=8)


def test_corrupt_image(imagenet):
    (imagenet/'dog'/'broken.jpg').write_bytes(b'\xff\xd8\xff' + bytes(50))
    with pytest.raises(ValueError, match=r'broken\.jpg is not a readable image'): ds.image_folder(imagenet, size=8)


def test_image_folder_layout(tmp_path, imagenet):
    (tmp_path/'nothing').mkdir()
    with pytest.raises(ValueError, match='nothing has no class folders'): ds.image_folder(tmp_path/'nothing')
    with pytest.raises(ValueError, match=r"classes \['bird'\] are not folders.*valid classes are \['cat', 'dog'\]"):
        ds.image_folder(imagenet, size=8, classes=['bird'])
    (imagenet/'empty').mkdir()
    with pytest.raises(ValueError, match=r'empty has no images'): ds.image_folder(imagenet, size=8)


# ---------------------------------------------------------------- depth

def test_depth_layout_and_formats(nyu):
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(nyu/'rgb'/'b.png')
    with pytest.raises(FileNotFoundError, match=r"no depth for id\(s\) \['b'\]"): ds.depth_pairs(nyu, size=8)
    cv2.imwrite(str(nyu/'depth'/'b.png'), np.full((24, 32), 9, np.uint8))
    with pytest.raises(ValueError, match=r'b\.png is uint8.*16-bit millimetres'): ds.depth_pairs(nyu, size=8)
    (nyu/'depth'/'b.png').unlink(); np.save(nyu/'depth'/'b.npy', np.ones((2, 24, 32)))
    with pytest.raises(ValueError, match=r'b\.npy holds a float64 array of shape \(2, 24, 32\)'): ds.depth_pairs(nyu, size=8)
    np.save(nyu/'depth'/'b.npy', np.ones((32, 32)))
    with pytest.raises(ValueError, match="id 'b'.*differ in aspect ratio"): ds.depth_pairs(nyu, size=8)
    (nyu/'depth'/'b.npy').unlink(); (nyu/'depth'/'b.npy').write_bytes(b'not numpy')
    with pytest.raises(ValueError, match=r'b\.npy is not a readable \.npy'): ds.depth_pairs(nyu, size=8)
    with pytest.raises(FileNotFoundError, match='root/rgb'): ds.depth_pairs(nyu/'rgb', size=8)


def test_depth_missing_values_are_masked(nyu):
    depth = np.full((24, 32), 2.0, np.float32); depth[:, :16] = np.nan; depth[0] = -1
    (nyu/'depth'/'a.png').unlink(); np.save(nyu/'depth'/'a.npy', depth)
    out = ds.depth_pairs(nyu, size=8)
    assert not out['valid'][0][:, :2].any() and out['valid'][0][:, -2:].all()
    assert np.isfinite(out['depth']).all() and (out['depth'][~out['valid']] == 0).all()


# ---------------------------------------------------------------- TAP-Vid pickles

def dump(path, obj):
    with open(path, 'wb') as f: pickle.dump(obj, f)
    return path


def tapvid_entry(T=5, N=2, H=16, W=16):
    return {'video': np.zeros((T, H, W, 3), np.uint8), 'points': np.full((N, T, 2), 0.5, np.float32), 'occluded': np.zeros((N, T), bool)}


@pytest.mark.parametrize('content, message', [
    ({'v': {'video': np.zeros((5, 8, 8, 3), np.uint8)}}, "has \\['video'\\]; valid entries have 'video', 'points', 'occluded'"),
    ({'v': {**tapvid_entry(), 'points': np.zeros((2, 4, 2))}}, r'points \(2, 4, 2\) .* do not fit 5 frames'),
    ({'v': {**tapvid_entry(), 'video': np.zeros((5, 8, 8), np.uint8)}}, r'valid videos are uint8 \(T, H, W, 3\)'),
    ({'v': {**tapvid_entry(), 'video': [b'not a jpeg']}}, 'not decodable images'),
    ([], 'holds no videos'),
    (np.zeros(3), 'holds a ndarray; valid TAP-Vid pickles hold a dict or list'),
])
def test_tapvid_bad_structure(tmp_path, content, message):
    with pytest.raises(ValueError, match=message): ds.tapvid_pickle(dump(tmp_path/'t.pkl', content), size=8)


def test_tapvid_frames(tmp_path):
    path = dump(tmp_path/'t.pkl', {'a': tapvid_entry(T=5), 'b': tapvid_entry(T=9)})
    with pytest.raises(ValueError, match='pass frames='): ds.tapvid_pickle(path, size=8)
    with pytest.raises(ValueError, match="video 'a' has 5 frames, fewer than frames=9"): ds.tapvid_pickle(path, size=8, frames=9)
    with pytest.raises(ValueError, match='1 \\+ 4k'): ds.tapvid_pickle(path, size=8, frames=4)
    assert ds.tapvid_pickle(path, size=8, frames=5)['video'].shape == (2, 5, 8, 8, 3)


def test_tapvid_refuses_code(tmp_path):
    class Payload:
        def __reduce__(self): return (print, ('code ran',))
    with pytest.raises(ValueError, match='refusing to load builtins.print'):
        ds.tapvid_pickle(dump(tmp_path/'t.pkl', {'v': Payload()}))


# ---------------------------------------------------------------- RealEstate10K

@pytest.mark.parametrize('text, message', [
    ('0 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n', 'expected the video URL alone'),
    ('https://youtu.be/x\n', 'a URL but no camera lines'),
    ('https://youtu.be/x\n' + camera_line() + ' 1\n', 'line 2: 20 fields; valid lines have 19'),
    ('https://youtu.be/x\n' + ' '.join(camera_line().split()[:-1]) + '\n', 'line 2: 18 fields'),
    ('https://youtu.be/x\n' + camera_line().replace('0.9', 'abc') + '\n', 'line 2: not a number'),
    ('https://youtu.be/x\n' + camera_line().replace('0.9', 'nan') + '\n', 'line 2: a value is not finite'),
    ('https://youtu.be/x\n' + camera_line(world_to_camera=2 * np.eye(4)[:3]) + '\n', 'line 2: .* is not a rotation'),
    ('https://youtu.be/x\n\n' + camera_line() + '\n' + camera_line(world_to_camera=np.diag([1, 1, -1, 1])[:3]) + '\n',
     'line 4: .* is not a rotation'),
    ('https://youtu.be/x\n1.5' + camera_line()[1:] + '\n', 'line 2: not a number'),
])
def test_realestate10k_bad_lines(tmp_path, text, message):
    (tmp_path/'c.txt').write_text(text)
    with pytest.raises(ValueError, match=message) as err: ds.realestate10k_cameras(tmp_path/'c.txt')
    assert 'c.txt' in str(err.value)


rotations = st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 0.1)


@FUZZ
@given(quaternions=st.lists(rotations, min_size=1, max_size=4),
       translation=st.lists(st.floats(-50, 50), min_size=3, max_size=3),
       intrinsics=st.tuples(*[st.floats(0.01, 2)] * 4), start=st.integers(0, 10**12))
def test_realestate10k_round_trip(tmp_path, quaternions, translation, intrinsics, start):
    "Any rotation and translation written as world-to-camera comes back as its inverse, camera-to-world."
    poses = []
    for q in quaternions:
        w, x, y, z = np.array(q) / np.linalg.norm(q)
        R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        poses.append(np.hstack([R, np.array(translation)[:, None]]))
    lines = ['https://www.youtube.com/watch?v=fuzz'] + [camera_line(start + 33366 * i, p, intrinsics) for i, p in enumerate(poses)]
    (tmp_path/'c.txt').write_text('\n'.join(lines))
    cams = ds.realestate10k_cameras(tmp_path/'c.txt')
    assert cams['timestamp'].tolist() == [start + 33366 * i for i in range(len(poses))]
    for camera, pose in zip(cams['camera'], poses):
        world_to_camera = np.vstack([pose, [0, 0, 0, 1]])
        assert np.allclose(camera.astype(np.float64) @ world_to_camera, np.eye(4), atol=1e-4 * (1 + np.abs(translation).max()))
    assert np.allclose(cams['intrinsics'][:, [0, 1, 0, 1], [0, 1, 2, 2]], np.array(intrinsics, np.float32))


@FUZZ
@given(lines=st.lists(st.text(alphabet=st.sampled_from('0123456789.-e +naif\tx/:'), max_size=120), max_size=6))
def test_realestate10k_fuzzed_lines_fail_cleanly(tmp_path, lines):
    "Whatever the lines hold, the parser returns cameras or raises ValueError, never anything else."
    (tmp_path/'c.txt').write_text('\n'.join(lines))
    try: cams = ds.realestate10k_cameras(tmp_path/'c.txt')
    except ValueError as e: assert 'c.txt' in str(e)
    else: assert cams['camera'].shape == (len(cams['timestamp']), 4, 4)


# ---------------------------------------------------------------- random bytes and random CSVs

@FUZZ
@given(content=st.binary(min_size=1, max_size=4000))
def test_random_bytes_as_video(tmp_path, content):
    (tmp_path/'x.mp4').write_bytes(content)
    with pytest.raises(ValueError, match=r'x\.mp4'): read_video(tmp_path/'x.mp4')


@FUZZ
@given(content=st.binary(min_size=1, max_size=2000))
def test_random_bytes_as_image_pickle_and_depth(tmp_path, content):
    for name, load in (('x.png', ds.read_image), ('x.pkl', ds.tapvid_pickle), ('x.npy', ds.read_depth), ('d.png', ds.read_depth)):
        (tmp_path/name).write_bytes(content)
        try: load(tmp_path/name)
        except ValueError as e: assert name in str(e)


cells = st.text(alphabet=st.sampled_from('abc.mp4,_ "\n'), max_size=12)


@FUZZ
@given(header=st.lists(st.sampled_from(['path', 'label', 'video', 'x', '']), max_size=3),
       rows=st.lists(st.lists(cells, max_size=3), max_size=4))
def test_random_labels_csv(kinetics, header, rows):
    "Random CSVs either load (when they name real videos) or raise ValueError / FileNotFoundError naming the CSV."
    buffer = io.StringIO(); writer = csv.writer(buffer)
    writer.writerow(header); writer.writerows(rows)
    (kinetics/'random.csv').write_text(buffer.getvalue())
    try: out = ds.video_folder(kinetics, kinetics/'random.csv', frames=1, size=8)
    except (ValueError, FileNotFoundError) as e: assert 'random.csv' in str(e) or 'is not a readable video' in str(e) or 'no video file' in str(e)
    else: assert out['video'].shape[1:] == (1, 8, 8, 3)
