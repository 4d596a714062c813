// GET /models and GET /models/{id}: the JSON descriptions of the models, and the choice of the default
// model.
import type { IRouter } from 'express';
import { METHOD_NAMES } from '../../cam/index.js';
import type { ModelInfo } from '../../engine/index.js';
import { COLORMAP_NAMES } from '../../render/index.js';
import type { ModelStatus } from '../../workers/index.js';
import { findModel, requirePool, routeLabel, type AppContext } from '../context.js';

export const MODEL_ROUTES: Record<string, string[]> = {
  '/models': ['GET', 'HEAD'],
  '/models/{id}': ['GET', 'HEAD'],
};

/** Registers the routes on the app (not a sub-router: its automatic OPTIONS answer would shadow the app's 405 table). */
export function modelsRoutes(router: IRouter, ctx: AppContext): void {
  router.get('/models', (_req, res) => {
    routeLabel(res, '/models');
    res.json(modelList(requirePool(ctx).models(), ctx.defaultModel()));
  });
  router.get('/models/:id', (req, res) => {
    routeLabel(res, '/models/{id}');
    const id = String(req.params.id);
    const models = requirePool(ctx).models();
    const m = models.find((s) => s.id === id);
    if (!m) findModel(models, id, 'id');
    res.json(modelDetails(m!));
  });
}

export interface InputDescription {
  name: string;
  dims: number[];
  layout: 'NCHW' | 'NHWC';
  channels: 'RGB' | 'BGR' | 'gray';
  size: { height: number; width: number };
  scale: number;
  mean: number[];
  std: number[];
  affine?: { scale: number[]; offset: number[] };
  resize: 'stretch' | 'crop' | 'pad';
  resize_size?: number;
  anchor?: 'center' | 'top-left';
  pad_value?: number;
}

export type ModelSummary =
  | {
    id: string; status: 'ready'; description?: string; warning?: string;
    /** which files are served (changes when a reload replaces them) */
    version?: string;
    input: InputDescription; num_classes: number; has_labels: boolean; multi_label: boolean; default_layer: string;
    /** which model gives the predictions, and which the activations and gradients */
    predictions_from: 'model' | 'float twin' | 'fp32 twin'; gradients: 'model' | 'float twin' | 'fp32 twin';
  }
  | { id: string; status: 'error'; error: string };

export interface LayerDescription {
  name: string; dims: number[]; op: string; node: string; tensor: string; why: string;
  view?: { kind: string; tensor_dims: number[]; prefix_tokens?: number; grid?: number[]; rows?: number };
}

export type ModelDetails =
  | (Extract<ModelSummary, { status: 'ready' }> & {
    opset: number; logits: string; labels: string[] | null;
    twin: { kind: string; quantized_ops: string[]; half_precision: boolean; notes: string[] } | null;
    batch: { mode: string; size?: number; note: string; blocked_by?: { op: string; node: string } };
    candidate_layers: LayerDescription[];
  })
  | Extract<ModelSummary, { status: 'error' }>;

function input(info: ModelInfo): InputDescription {
  const s = info.manifest.input;
  return {
    name: info.inputName, dims: info.inputDims, layout: s.layout, channels: s.channels,
    size: { height: info.inputSize.height, width: info.inputSize.width },
    scale: s.scale, mean: s.mean, std: s.std, ...(s.affine ? { affine: s.affine } : {}), resize: s.resize,
    ...(s.resizeSize !== undefined ? { resize_size: s.resizeSize } : {}),
    ...(s.resize === 'pad' ? { anchor: s.anchor ?? 'center', pad_value: s.padValue ?? 0 } : {}),
  };
}

export function modelSummary(m: ModelStatus): ModelSummary {
  if (!m.ok) return { id: m.id, status: 'error', error: m.error };
  const { info } = m;
  const warning = [...(info.warnings ?? []), ...('warning' in m && typeof m.warning === 'string' ? [m.warning] : [])].join('; ') || undefined;
  return {
    id: m.id, status: 'ready',
    ...(info.version ? { version: info.version } : {}),
    ...(info.manifest.description ? { description: info.manifest.description } : {}),
    ...(warning ? { warning } : {}),
    input: input(info), num_classes: info.numClasses, has_labels: !!info.manifest.labels,
    multi_label: info.manifest.multiLabel, default_layer: info.defaultLayer,
    predictions_from: info.runs.predictions, gradients: info.runs.gradients,
  };
}

export function modelDetails(m: ModelStatus): ModelDetails {
  const summary = modelSummary(m);
  if (summary.status === 'error' || !m.ok) return { id: m.id, status: 'error', error: m.ok ? '' : m.error };
  const { info } = m;
  return {
    ...summary, opset: info.opset, logits: info.logits, labels: info.manifest.labels ?? null,
    twin: info.twin ? { kind: info.twin.kind, quantized_ops: info.twin.quantizedOps, half_precision: info.twin.halfPrecision, notes: info.twin.notes } : null,
    batch: {
      mode: info.batch.mode, ...(info.batch.size !== undefined ? { size: info.batch.size } : {}), note: info.batch.note,
      ...(info.batch.blockedBy ? { blocked_by: info.batch.blockedBy } : {}),
    },
    candidate_layers: info.candidateLayers.map(layerDescription),
  };
}

/** A candidate layer as served: its name, dims as explained, producer, tensor, the reason line, the reshape. */
export function layerDescription(c: ModelInfo['candidateLayers'][number]): LayerDescription {
  return {
    name: c.name, dims: c.dims, op: c.op, node: c.node, tensor: c.tensor, why: c.why,
    ...(c.view ? {
      view: {
        kind: c.view.kind, tensor_dims: c.view.sourceDims,
        ...(c.view.prefix !== undefined ? { prefix_tokens: c.view.prefix } : {}),
        ...(c.view.grid ? { grid: c.view.grid } : {}),
        ...(c.view.rows !== undefined ? { rows: c.view.rows } : {}),
      },
    } : {}),
  };
}

export function modelList(models: ModelStatus[], defaultModel: string | undefined) {
  return { default: defaultModel ?? null, methods: [...METHOD_NAMES], colormaps: [...COLORMAP_NAMES], models: models.map(modelSummary) };
}

/**
 * The model of a request that names none: `configured` (DEFAULT_MODEL; an error if no such folder),
 * else `shapes` when it loaded, else the first model that loaded (ids sorted), else none.
 */
export function chooseDefaultModel(models: ModelStatus[], configured: string | undefined): string | undefined {
  if (configured !== undefined) {
    if (!models.some((m) => m.id === configured)) {
      throw new Error(`DEFAULT_MODEL "${configured}" is not a model folder; found: ${models.map((m) => m.id).join(', ') || 'none'}`);
    }
    return configured;
  }
  return models.find((m) => m.ok && m.id === 'shapes')?.id ?? models.find((m) => m.ok)?.id;
}
