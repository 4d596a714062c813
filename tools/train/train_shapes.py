#!/usr/bin/python3
"""Trains the default camserve model: a small residual CNN on the synthetic shapes scenes.

Reads the folders written by tools/shapes/export-dataset.ts (images.u8, labels.u8, meta.json):
  <data>/train  training scenes   (seeds 0 ...)
  <data>/val    validation scenes (seeds 100000 ...)
  <data>/test   held-out scenes   (seeds 1000000 ...), never used for training or model selection

Writes <out>/model.onnx, <out>/model.json, <out>/labels.txt, the training log, and <data>/onnx_check.json
(PyTorch logits of a few held-out scenes, compared against onnxruntime by tools/train/check_onnx.ts).

  /usr/bin/python3 tools/train/train_shapes.py --data tmp/shapes --out models/shapes --log tools/train/train.log

Preprocessing, shared with the service: x = (pixel / 255 - mean[c]) / std[c], RGB, NCHW, float32.
"""
import argparse
import json
import os
import platform
import sys
import time

# Threads that wait in OpenMP barriers sleep instead of spinning: kinder to a shared machine, and no slower.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SIZE = 128


# ------------------------------------------------------------------------------------------------ data

class Split:
    def __init__(self, folder, limit=None):
        with open(os.path.join(folder, 'meta.json')) as f:
            self.meta = json.load(f)
        n = self.meta['n'] if limit is None else min(limit, self.meta['n'])
        self.n = n
        self.start = self.meta['start']
        self.class_names = self.meta['classNames']
        k = len(self.class_names)
        self.images = np.fromfile(os.path.join(folder, 'images.u8'), dtype=np.uint8, count=n * SIZE * SIZE * 3).reshape(n, SIZE, SIZE, 3)
        self.labels = np.fromfile(os.path.join(folder, 'labels.u8'), dtype=np.uint8, count=n * k).reshape(n, k).astype(np.float32)
        self.objects = self.meta['objects'][:n]


def channel_stats(images, chunk=2000):
    """Per-channel mean and std of pixel/255 over all pixels (float64 accumulation)."""
    s = np.zeros(3)
    s2 = np.zeros(3)
    count = 0
    for i in range(0, len(images), chunk):
        x = images[i:i + chunk].reshape(-1, 3).astype(np.float64) / 255.0
        s += x.sum(0)
        s2 += (x * x).sum(0)
        count += x.shape[0]
    mean = s / count
    std = np.sqrt(s2 / count - mean * mean)
    return mean, std


class Normalise:
    """uint8 NHWC batch → normalised float32 NCHW tensor, exactly (pixel/255 - mean)/std."""

    def __init__(self, mean, std):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def __call__(self, batch_u8):
        x = torch.from_numpy(np.ascontiguousarray(batch_u8)).permute(0, 3, 1, 2).float()
        return (x / 255.0 - self.mean) / self.std


def dihedral(x, gen):
    """Random flips and transposes per sample (all classes are rendered at random rotations)."""
    n = x.shape[0]
    m = torch.rand(n, 3, generator=gen) < 0.5
    x = torch.where(m[:, 0].view(n, 1, 1, 1), x.flip(3), x)
    x = torch.where(m[:, 1].view(n, 1, 1, 1), x.flip(2), x)
    x = torch.where(m[:, 2].view(n, 1, 1, 1), x.transpose(2, 3), x)
    return x


# ----------------------------------------------------------------------------------------------- model

class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ShapesNet(nn.Module):
    """stem 3×3/2 → 64×64, stage1 /2 → 32×32, stage2 /2 → 16×16, stage3 /1 → 16×16, GAP, linear.

    The last feature map (output of stage3, 16×16 at 128×128 input) is the natural CAM layer.
    """

    def __init__(self, num_classes=10, widths=(16, 32, 64, 96), blocks=(1, 1, 1)):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.stem = nn.Sequential(nn.Conv2d(3, w0, 3, 2, 1, bias=False), nn.BatchNorm2d(w0), nn.ReLU(inplace=True))

        def stage(cin, cout, stride, n):
            return nn.Sequential(*[BasicBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(n)])

        self.stage1 = stage(w0, w1, 2, blocks[0])
        self.stage2 = stage(w1, w2, 2, blocks[1])
        self.stage3 = stage(w2, w3, 1, blocks[2])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w3, num_classes)
        # Start each residual block as the identity (zero last-BN scale) and the head at the label prior
        # (about 1.8 of 10 classes present): both shorten the plateau at the start of training.
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)
        nn.init.constant_(self.fc.bias, -1.5)

    def features(self, x):
        return self.stage3(self.stage2(self.stage1(self.stem(x))))

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


# ------------------------------------------------------------------------------------------ evaluation

@torch.no_grad()
def predict(model, split, norm, batch=200, with_cam=False):
    model.eval()
    logits, cams = [], []
    for i in range(0, split.n, batch):
        x = norm(split.images[i:i + batch]).contiguous(memory_format=torch.channels_last)
        f = model.features(x)
        logits.append(model.fc(torch.flatten(model.pool(f), 1)))
        if with_cam:
            # Class activation maps: fc weights over the last feature map (no bias), upsampled to the image.
            cam = torch.einsum('kc,nchw->nkhw', model.fc.weight, f.contiguous())
            cams.append(F.interpolate(cam, size=(SIZE, SIZE), mode='bilinear', align_corners=False))
    return torch.cat(logits), (torch.cat(cams) if with_cam else None)


def metrics(logits, labels, class_names, cams=None, objects=None):
    pred = (torch.sigmoid(logits) > 0.5).numpy().astype(np.float32)
    y = labels
    out = {
        'n': int(len(y)),
        'exact_match': float((pred == y).all(1).mean()),
        'hamming_accuracy': float((pred == y).mean()),
        'per_class': {},
    }
    f1s = []
    for k, name in enumerate(class_names):
        tp = float(((pred[:, k] == 1) & (y[:, k] == 1)).sum())
        fp = float(((pred[:, k] == 1) & (y[:, k] == 0)).sum())
        fn = float(((pred[:, k] == 0) & (y[:, k] == 1)).sum())
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        f1s.append(f1)
        out['per_class'][name] = {
            'accuracy': float((pred[:, k] == y[:, k]).mean()), 'precision': prec, 'recall': rec, 'f1': f1,
            'positives': int(y[:, k].sum()),
        }
    out['macro_f1'] = float(np.mean(f1s))
    if cams is not None:
        # Pointing game: is the CAM maximum of an object's class inside that object's box? Counted only for
        # classes present once in the scene (two instances make the argmax ambiguous between them).
        hits = total = 0
        for i, objs in enumerate(objects):
            counts = {}
            for o in objs:
                counts[o['cls']] = counts.get(o['cls'], 0) + 1
            for o in objs:
                if counts[o['cls']] != 1:
                    continue
                cam = cams[i, o['cls']]
                idx = int(torch.argmax(cam))
                yy, xx = divmod(idx, SIZE)
                x0, y0, x1, y1 = o['box']
                hits += int(x0 <= xx < x1 and y0 <= yy < y1)
                total += 1
        out['cam_pointing_game'] = hits / total if total else float('nan')
        out['cam_pointing_game_n'] = total
    return out


def format_metrics(name, m):
    lines = [f'{name}: n={m["n"]} exact-match={m["exact_match"]:.4f} hamming-acc={m["hamming_accuracy"]:.4f} '
             f'macro-F1={m["macro_f1"]:.4f}' +
             (f' CAM-pointing-game={m["cam_pointing_game"]:.4f} (n={m["cam_pointing_game_n"]})' if 'cam_pointing_game' in m else '')]
    lines.append(f'  {"class":<10} {"acc":>7} {"prec":>7} {"recall":>7} {"F1":>7} {"pos":>5}')
    for k, v in m['per_class'].items():
        lines.append(f'  {k:<10} {v["accuracy"]:7.4f} {v["precision"]:7.4f} {v["recall"]:7.4f} {v["f1"]:7.4f} {v["positives"]:5d}')
    return '\n'.join(lines)


# ------------------------------------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', default='tmp/shapes')
    ap.add_argument('--out', default='models/shapes')
    ap.add_argument('--log', default='tools/train/train.log')
    ap.add_argument('--ntrain', type=int, default=None, help='use only the first N training scenes')
    ap.add_argument('--epochs', type=int, default=6)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--wd', type=float, default=5e-4)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--max-minutes', type=float, default=None, help='stop early (after an epoch) past this budget')
    args = ap.parse_args()

    t_start = time.time()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    log_lines = []

    def log(s=''):
        print(s, flush=True)
        log_lines.append(s)

    train = Split(os.path.join(args.data, 'train'), args.ntrain)
    val = Split(os.path.join(args.data, 'val'))
    test = Split(os.path.join(args.data, 'test'))
    class_names = train.class_names
    assert val.class_names == class_names and test.class_names == class_names

    mean, std = channel_stats(train.images)
    # The exact values written to model.json are the ones used here.
    mean = [round(float(v), 4) for v in mean]
    std = [round(float(v), 4) for v in std]
    norm = Normalise(mean, std)

    log('camserve shapes model training')
    log(f'date: {time.strftime("%Y-%m-%d %H:%M:%S %Z")}')
    log(f'python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, '
        f'threads {torch.get_num_threads()}, cpu {platform.processor() or platform.machine()}')
    log(f'seed {args.seed}, epochs {args.epochs}, batch {args.batch}, AdamW lr {args.lr} (one-cycle), weight decay {args.wd}, '
        f'augmentation: random flips/transposes (dihedral)')
    for name, s in (('train', train), ('val', val), ('test', test)):
        gen = s.meta.get('msPerScene')
        log(f'{name}: {s.n} scenes, seeds [{s.start}, {s.start + s.n}), generated at {gen:.2f} ms/scene '
            f'({s.meta.get("workers")} worker threads)')
    log(f'classes: {", ".join(class_names)}')
    log(f'normalisation: mean {mean} std {std}  (x = (pixel/255 - mean)/std, RGB, NCHW)')

    model = ShapesNet(len(class_names)).to(memory_format=torch.channels_last)
    nparams = sum(p.numel() for p in model.parameters())
    log(f'model: ShapesNet widths 16/32/64/96, 3 stages of 1 basic block, last feature map 16x16, {nparams} parameters; '
        'residual blocks start as identity (zero last-BN scale), head bias at the label prior')

    steps_per_epoch = train.n // args.batch
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    total_steps = args.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total_steps,
                                                pct_start=max(0.05, 4 / total_steps), div_factor=20, final_div_factor=200)
    gen = torch.Generator().manual_seed(args.seed)
    labels_t = torch.from_numpy(train.labels)
    log('')
    log(f'{"epoch":>5} {"train-loss":>10} {"val-loss":>9} {"val-exact":>9} {"val-hamming":>11} {"lr":>9} {"elapsed-s":>9}')
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(train.n, generator=gen).numpy()
        total, seen = 0.0, 0
        t_epoch = time.time()
        for step in range(steps_per_epoch):
            idx = np.sort(perm[step * args.batch:(step + 1) * args.batch])
            x = dihedral(norm(train.images[idx]), gen).contiguous(memory_format=torch.channels_last)
            y = labels_t[idx]
            loss = F.binary_cross_entropy_with_logits(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
            seen += len(idx)
            if step % 250 == 0:
                print(f'  epoch {epoch + 1} step {step}/{steps_per_epoch} loss {total / seen:.4f} '
                      f'{seen / (time.time() - t_epoch):.0f} img/s', flush=True)
        vlogits, _ = predict(model, val, norm)
        vloss = float(F.binary_cross_entropy_with_logits(vlogits, torch.from_numpy(val.labels)))
        vm = metrics(vlogits, val.labels, class_names)
        log(f'{epoch + 1:5d} {total / seen:10.4f} {vloss:9.4f} {vm["exact_match"]:9.4f} {vm["hamming_accuracy"]:11.4f} '
            f'{sched.get_last_lr()[0]:9.2e} {time.time() - t_start:9.1f}')
        if args.max_minutes and (time.time() - t_start) / 60 > args.max_minutes and epoch + 1 < args.epochs:
            log(f'stopping early: past the {args.max_minutes} minute budget')
            break
    t_train = time.time() - t_start

    # ---- final evaluation (validation and held-out), with CAM pointing game
    model.eval()
    log('')
    log(f'training time: {t_train:.1f} s ({t_train / 60:.1f} min)')
    vlogits, vcams = predict(model, val, norm, with_cam=True)
    vm = metrics(vlogits, val.labels, class_names, vcams, val.objects)
    log(format_metrics(f'validation (seeds {val.start}..{val.start + val.n - 1})', vm))
    tlogits, tcams = predict(model, test, norm, with_cam=True)
    tm = metrics(tlogits, test.labels, class_names, tcams, test.objects)
    log(format_metrics(f'held-out test (seeds {test.start}..{test.start + test.n - 1}, never trained on)', tm))

    # ---- export
    os.makedirs(args.out, exist_ok=True)
    model = model.to(memory_format=torch.contiguous_format).eval()
    onnx_path = os.path.join(args.out, 'model.onnx')
    dummy = norm(test.images[:1])
    torch.onnx.export(model, dummy, onnx_path, opset_version=13, input_names=['input'], output_names=['logits'],
                      do_constant_folding=True, export_params=True)
    import onnx
    m = onnx.load(onnx_path)
    onnx.checker.check_model(m)
    ops = sorted({n.op_type for n in m.graph.node})
    size = os.path.getsize(onnx_path)
    log('')
    log(f'exported {onnx_path}: {size} bytes, opset 13, weights embedded, ops {", ".join(ops)}')
    with open(os.path.join(args.out, 'labels.txt'), 'w') as f:
        f.write('\n'.join(class_names) + '\n')
    with open(os.path.join(args.out, 'model.json'), 'w') as f:
        d = json.dumps
        f.write('{\n'
                f'  "input": {{ "size": [{SIZE}, {SIZE}], "layout": "NCHW", "channels": "RGB", "scale": {d(1 / 255)}, '
                f'"mean": {d(mean)}, "std": {d(std)}, "resize": "stretch" }},\n'
                '  "labels": "labels.txt",\n'
                '  "multiLabel": true\n'
                '}\n')

    # ---- reference logits for tools/train/check_onnx.ts (same scenes regenerated in Node from their seeds)
    check_idx = list(range(8))
    with torch.no_grad():
        ref = model(norm(test.images[check_idx])).numpy()
    with open(os.path.join(args.data, 'onnx_check.json'), 'w') as f:
        json.dump({'seeds': [test.start + i for i in check_idx], 'logits': ref.tolist(),
                   'testExactMatch': tm['exact_match'], 'testN': test.n}, f)
    with open(os.path.join(args.data, 'metrics.json'), 'w') as f:
        json.dump({'val': vm, 'test': tm, 'train_seconds': t_train, 'onnx_bytes': size}, f, indent=1)

    log(f'total time: {time.time() - t_start:.1f} s')
    with open(args.log, 'w') as f:
        f.write('\n'.join(log_lines) + '\n')


if __name__ == '__main__':
    sys.exit(main())
