#!/usr/bin/env python3
"""Reference outputs for test/render/render.test.ts, computed with OpenCV + numpy.

Writes test/fixtures/render/reference.json. Floats are stored as base64 of little-endian
float32, bytes as hex. The pytorch-grad-cam functions used (scale_cam_image,
show_cam_on_image, compute_cam_per_layer + aggregate_multi_layers) are replicated below, since
the package itself needs torch.

Usage (Debian: apt-get install python3-opencv):
    /usr/bin/python3 tools/render/gen_render_reference.py
"""
import base64
import json
import os

import cv2
import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'render', 'reference.json')

rng = np.random.default_rng(20240531)

CMAPS = {
    'jet': cv2.COLORMAP_JET,
    'turbo': cv2.COLORMAP_TURBO,
    'viridis': cv2.COLORMAP_VIRIDIS,
    'inferno': cv2.COLORMAP_INFERNO,
    'magma': cv2.COLORMAP_MAGMA,
}


def f32b64(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype='<f4').tobytes()).decode('ascii')


def u8hex(a):
    return np.ascontiguousarray(a, dtype=np.uint8).tobytes().hex()


def cmap_rgb(mask01, cmap):
    """pytorch-grad-cam: cv2.applyColorMap(np.uint8(255 * mask), colormap), then BGR -> RGB."""
    bgr = cv2.applyColorMap(np.uint8(255 * mask01), cmap)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# --- pytorch-grad-cam replicas (pytorch_grad_cam/utils/image.py, base_cam.py) ---

def scale_cam_image(cam, target_size=None):
    result = []
    for img in cam:
        img = img - np.min(img)
        img = img / (1e-7 + np.max(img))
        if target_size is not None:
            img = cv2.resize(img, target_size)
        result.append(img)
    return np.float32(result)


def show_cam_on_image(img, mask, use_rgb=False, colormap=cv2.COLORMAP_JET, image_weight=0.5):
    heatmap = cv2.applyColorMap(np.uint8(255 * mask), colormap)
    if use_rgb:
        heatmap = cv2.cvtColor(heatmap, cv2.COLOR_BGR2RGB)
    heatmap = np.float32(heatmap) / 255
    if np.max(img) > 1:
        raise Exception('The input image should np.float32 in the range [0, 1]')
    cam = (1 - image_weight) * heatmap + image_weight * img
    cam = cam / np.max(cam)
    return np.uint8(255 * cam)


def multi_layer(cams, target_size):
    """compute_cam_per_layer (relu, scale_cam_image(cam, target_size)) + aggregate_multi_layers."""
    per_layer = []
    for cam in cams:
        cam = np.maximum(cam[None], 0)
        scaled = scale_cam_image(cam, target_size)
        per_layer.append(scaled[:, None, :])
    per_layer = np.concatenate(per_layer, axis=1)
    per_layer = np.maximum(per_layer, 0)
    result = np.mean(per_layer, axis=1)
    return scale_cam_image(result)[0]


def rand_map(h, w, lo=-1.0, hi=3.0):
    return rng.uniform(lo, hi, size=(h, w)).astype(np.float32)


def blob_map(h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    g = np.exp(-((x - 0.65 * (w - 1)) ** 2 + (y - 0.35 * (h - 1)) ** 2) / (0.08 * w * h))
    return (g * 4 - 1 + 0.1 * rng.standard_normal((h, w))).astype(np.float32)


def sample_idx(n, stride):
    if n <= 64:
        return list(range(n))
    s = set(range(0, n, stride)) | {0, 1, 2, n - 3, n - 2, n - 1}
    return sorted(s)


def main():
    ref = {'opencv': cv2.__version__, 'numpy': np.__version__}

    # Colour maps: the whole table, read back from applyColorMap on the ramp.
    ramp = np.arange(256, dtype=np.uint8).reshape(1, 256)
    ref['colormaps'] = {
        name: u8hex(cv2.cvtColor(cv2.applyColorMap(ramp, c), cv2.COLOR_BGR2RGB).reshape(-1))
        for name, c in CMAPS.items()
    }

    # Resize: cv2.resize(float32, (w, h)), INTER_LINEAR. Large outputs keep a sampled grid.
    resize_cases = []
    for (sw, sh), (dw, dh) in [
        ((7, 7), (224, 224)),
        ((5, 9), (37, 23)),
        ((50, 40), (13, 7)),
        ((8, 6), (4, 3)),      # exact 2x shrink (OpenCV switches to INTER_AREA internally)
        ((1, 3), (4, 5)),      # single column
        ((6, 4), (6, 4)),      # identity
        ((3, 2), (10, 1)),     # single output row
        ((14, 14), (224, 224)),
    ]:
        src = rand_map(sh, sw)
        dst = cv2.resize(src, (dw, dh))
        assert dst.shape == (dh, dw) and dst.dtype == np.float32
        rows = sample_idx(dh, 5)
        cols = sample_idx(dw, 5)
        resize_cases.append({
            'src': {'width': sw, 'height': sh, 'data': f32b64(src)},
            'width': dw, 'height': dh, 'rows': rows, 'cols': cols,
            'expected': f32b64(dst[np.ix_(rows, cols)]),
        })
    ref['resize'] = resize_cases

    # normalise (scale_cam_image without target size)
    norm_src = rand_map(6, 9, -5, 2)
    ref['normalize'] = {
        'src': {'width': 9, 'height': 6, 'data': f32b64(norm_src)},
        'expected': f32b64(scale_cam_image(norm_src[None])[0]),
    }

    # applyColormap: values around every k/255 boundary, plus out-of-range values.
    k = np.arange(256, dtype=np.float64)
    vals = np.concatenate([
        (k / 255).astype(np.float32),
        np.nextafter((k / 255).astype(np.float32), np.float32(-1)),
        np.nextafter((k / 255).astype(np.float32), np.float32(2)),
        rng.uniform(0, 1, 256).astype(np.float32),
    ])
    vals = np.clip(vals, 0, 1).astype(np.float32)  # np.uint8 wraps outside [0, 1]; we clamp
    cm_map = vals.reshape(32, 32)
    ref['applyColormap'] = {
        'src': {'width': 32, 'height': 32, 'data': f32b64(cm_map)},
        'expected': {name: u8hex(cmap_rgb(cm_map, c).reshape(-1)) for name, c in CMAPS.items()},
    }

    # blend == show_cam_on_image(img / 255, mask, use_rgb=True, image_weight=alpha)
    bh, bw = 6, 8
    img_u8 = rng.integers(0, 256, size=(bh, bw, 3), dtype=np.uint8)
    img_u8[0, 0] = 0
    mask = rng.uniform(0, 1, size=(bh, bw)).astype(np.float32)
    blend_cases = []
    for alpha, cname in [(0.5, 'jet'), (0.3, 'turbo'), (0.0, 'jet'), (1.0, 'viridis'), (0.77, 'magma')]:
        heat = cmap_rgb(mask, CMAPS[cname])
        out = show_cam_on_image(np.float32(img_u8) / 255, mask, use_rgb=True,
                                colormap=CMAPS[cname], image_weight=alpha)
        blend_cases.append({'alpha': alpha, 'colormap': cname, 'heatmap': u8hex(heat.reshape(-1)),
                            'expected': u8hex(out.reshape(-1))})
    ref['blend'] = {'width': bw, 'height': bh, 'image': u8hex(img_u8.reshape(-1)), 'cases': blend_cases}

    # Full overlay: show_cam_on_image(img/255, cv2.resize(scale_cam_image(map)), use_rgb, alpha)
    oh, ow = 18, 24
    yy, xx = np.mgrid[0:oh, 0:ow]
    o_img = np.stack([xx * 255 // (ow - 1), yy * 255 // (oh - 1), np.full_like(xx, 128)], -1).astype(np.uint8)
    o_map = blob_map(5, 4)
    o_mask = scale_cam_image(o_map[None], (ow, oh))[0]
    o_out = show_cam_on_image(np.float32(o_img) / 255, o_mask, use_rgb=True,
                              colormap=cv2.COLORMAP_JET, image_weight=0.4)
    o_heat = cmap_rgb(o_mask, cv2.COLORMAP_INFERNO)
    ref['overlay'] = {
        'image': {'width': ow, 'height': oh, 'data': u8hex(o_img.reshape(-1))},
        'map': {'width': 4, 'height': 5, 'data': f32b64(o_map)},
        'alpha': 0.4, 'colormap': 'jet', 'expected': u8hex(o_out.reshape(-1)),
        'heatmapColormap': 'inferno', 'heatmapExpected': u8hex(o_heat.reshape(-1)),
    }

    # averageMaps: several layers of different resolutions, target (width, height) = (20, 16).
    layers = [rand_map(7, 7), blob_map(14, 14), rand_map(4, 5, -2, 1)]
    tw, th = 20, 16
    ref['average'] = {
        'maps': [{'width': m.shape[1], 'height': m.shape[0], 'data': f32b64(m)} for m in layers],
        'width': tw, 'height': th,
        'expected': f32b64(multi_layer(layers, (tw, th))),
    }

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        json.dump(ref, f, separators=(',', ':'))
        f.write('\n')
    print(f'wrote {OUT} ({os.path.getsize(OUT)} bytes)')


if __name__ == '__main__':
    main()
