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
  resize: 'stretch' | 'crop' | 'pad';
}

export type ModelSummary =
  | {
    id: string; status: 'ready'; description?: string; warning?: string;
    input: InputDescription; num_classes: number; has_labels: boolean; multi_label: boolean; default_layer: string;
  }
  | { id: string; status: 'error'; error: string };

export type ModelDetails =
  | (Extract<ModelSummary, { status: 'ready' }> & {
    opset: number; logits: string; labels: string[] | null;
    candidate_layers: { name: string; dims: number[]; op: string; node: string }[];
  })
  | Extract<ModelSummary, { status: 'error' }>;

function input(info: ModelInfo): InputDescription {
  const s = info.manifest.input;
  return {
    name: info.inputName, dims: info.inputDims, layout: s.layout, channels: s.channels,
    size: { height: info.inputSize.height, width: info.inputSize.width },
    scale: s.scale, mean: s.mean, std: s.std, resize: s.resize,
  };
}

export function modelSummary(m: ModelStatus): ModelSummary {
  if (!m.ok) return { id: m.id, status: 'error', error: m.error };
  const { info } = m;
  const warning = 'warning' in m && typeof m.warning === 'string' ? m.warning : undefined;
  return {
    id: m.id, status: 'ready',
    ...(info.manifest.description ? { description: info.manifest.description } : {}),
    ...(warning ? { warning } : {}),
    input: input(info), num_classes: info.numClasses, has_labels: !!info.manifest.labels,
    multi_label: info.manifest.multiLabel, default_layer: info.defaultLayer,
  };
}

export function modelDetails(m: ModelStatus): ModelDetails {
  const summary = modelSummary(m);
  if (summary.status === 'error' || !m.ok) return { id: m.id, status: 'error', error: m.ok ? '' : m.error };
  const { info } = m;
  return {
    ...summary, opset: info.opset, logits: info.logits, labels: info.manifest.labels ?? null,
    candidate_layers: info.candidateLayers.map((c) => ({ name: c.name, dims: c.dims, op: c.op, node: c.node })),
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
