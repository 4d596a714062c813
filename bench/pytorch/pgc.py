"""pytorch-grad-cam, the peer camserve is compared with in `npm run bench:pgc` (not committed code of it:
the library is imported from an exported tree, --refs DIR/pytorch-grad-cam, see tools/fixtures/README.md).

Two modes, on the same torchvision weights as camserve's bench model (bench/models/<name>/model.pt, saved by
`tools/fixtures/generate.py --big` next to model.onnx), the same image and the same preprocessing
(stretch-resize to 224×224 with PIL's bilinear filter, ImageNet mean/std):

  inprocess  one JSON line: median ms of each method (gradcam, gradcam++, eigencam; scorecam with its batch
             size) for the top-1 class, the library called as its README shows, N runs after warm-up.
  serve      a threaded HTTP server of fixed design: POST /cam with the image as the raw body and
             ?method=…: decode (PIL), preprocess, the method, show_cam_on_image over the full-size image,
             PNG encode (OpenCV) — the same answer camserve gives. Prints "listening <port>".
"""
import argparse
import io
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import torch
import torchvision
from PIL import Image

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
BUILDERS = {"resnet50": torchvision.models.resnet50, "resnet18": torchvision.models.resnet18, "mobilenetv2": torchvision.models.mobilenet_v2}


def import_library(refs):
    sys.path.insert(0, os.path.join(REPO, "tools", "fixtures"))
    from generate_methods import write_shims  # the ttach stand-in (pytorch-grad-cam imports it for aug_smooth)
    write_shims(refs)
    sys.path.insert(0, os.path.join(refs, "shims"))
    sys.path.insert(0, os.path.join(refs, "pytorch-grad-cam"))
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    return pgc, show_cam_on_image, ClassifierOutputTarget


def load_model(name):
    model = BUILDERS[name]()
    state = torch.load(os.path.join(REPO, "bench", "models", name, "model.pt"), map_location="cpu")
    model.load_state_dict(state)
    model.eval()
    layer = {"resnet50": lambda m: m.layer4[-1], "resnet18": lambda m: m.layer4[-1], "mobilenetv2": lambda m: m.features[-1]}[name](model)
    return model, layer


def preprocess(img):
    rgb = np.asarray(img.convert("RGB").resize((224, 224), Image.BILINEAR), dtype=np.float32) / 255.0
    x = (rgb - MEAN) / STD
    return torch.from_numpy(x.transpose(2, 0, 1)).unsqueeze(0)


class Explainer:
    def __init__(self, refs, name, batch):
        self.pgc, self.show, self.Target = import_library(refs)
        self.model, self.layer = load_model(name)
        self.batch = batch
        self.cams = {}
        self.lock = threading.Lock()

    def cam(self, method):
        if method not in self.cams:
            cls = {"gradcam": self.pgc.GradCAM, "gradcam++": self.pgc.GradCAMPlusPlus, "eigencam": self.pgc.EigenCAM, "scorecam": self.pgc.ScoreCAM}[method]
            c = cls(model=self.model, target_layers=[self.layer])
            if method == "scorecam":
                c.batch_size = self.batch
            self.cams[method] = c
        return self.cams[method]

    def explain(self, x, method):
        # The library's CAM objects keep the hooks' activations and gradients on the instance: one explanation
        # at a time (a threaded server's concurrent requests otherwise read each other's, or None).
        with self.lock:
            return self._explain(x, method)

    def _explain(self, x, method):
        with torch.no_grad():
            target = int(self.model(x).argmax(1))
        return self.cam(method)(input_tensor=x, targets=[self.Target(target)])[0]


def inprocess(args):
    e = Explainer(args.refs, args.model, args.batch)
    img = Image.open(args.image)
    x = preprocess(img)
    out = {}
    with torch.no_grad():
        forward = []
        for i in range(args.runs + 2):
            t = time.perf_counter()
            e.model(x)
            forward.append((time.perf_counter() - t) * 1000)
    out["forward"] = float(np.median(forward[2:]))
    for method in args.methods.split(","):
        runs = 1 if method == "scorecam" else args.runs
        times = []
        for i in range(runs + (0 if method == "scorecam" else 2)):
            t = time.perf_counter()
            e.explain(x, method)
            times.append((time.perf_counter() - t) * 1000)
        out[method] = float(np.median(times[-runs:]))
    print(json.dumps(out), flush=True)


def serve(args):
    e = Explainer(args.refs, args.model, args.batch)
    import cv2

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            self.reply(200, b'{"status":"ok"}', "application/json")

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            method = "gradcam"
            if "?" in self.path:
                for kv in self.path.split("?", 1)[1].split("&"):
                    k, _, v = kv.partition("=")
                    if k == "method":
                        method = v.replace("%2B", "+")
            img = Image.open(io.BytesIO(body)).convert("RGB")
            cam = e.explain(preprocess(img), method)
            rgb = np.asarray(img, dtype=np.float32) / 255.0
            heat = cv2.resize(cam, (rgb.shape[1], rgb.shape[0]))
            overlay = e.show(rgb, heat, use_rgb=True)
            ok, png = cv2.imencode(".png", cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
            self.reply(200, png.tobytes(), "image/png")

        def reply(self, status, data, ctype):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["inprocess", "serve"])
    ap.add_argument("--refs", default=os.path.join(REPO, "tmp", "refs"))
    ap.add_argument("--model", default="resnet50", choices=sorted(BUILDERS))
    ap.add_argument("--image", default=None)
    ap.add_argument("--methods", default="gradcam,gradcam++,eigencam,scorecam")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    (inprocess if args.mode == "inprocess" else serve)(args)


if __name__ == "__main__":
    main()
