// The render thread: colour-maps and blends CAM maps onto the image and encodes PNGs, so that this
// per-pixel work (hundreds of milliseconds for a 2048-px image) never blocks the HTTP thread.
import { parentPort } from 'node:worker_threads';
import { toErrorData } from '../errors/index.js';
import { renderJob, type RenderJob } from '../render/index.js';
import { THREAD_NAMES, nameThread } from './thread-name.js';

nameThread(THREAD_NAMES.render);

const port = parentPort!;
port.on('message', (msg: { id: number; job: RenderJob }) => {
  renderJob(msg.job).then(
    (pngs) => port.postMessage({ id: msg.id, pngs }, pngs.map((p) => p.buffer as ArrayBuffer)),
    (e: unknown) => port.postMessage({ id: msg.id, error: toErrorData(e) }),
  );
});
