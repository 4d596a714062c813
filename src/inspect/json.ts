// The JSON shapes of the inspection answers (snake_case, as the rest of the HTTP API), shared by the
// routes and the CLI's --json.
import type { ModelSummary } from './summary.js';

const round = (v: number) => Math.round(v * 1e4) / 1e4;

/** A summary as served by GET /models/{id}/summary. */
export function summaryJson(s: ModelSummary) {
  return {
    model: s.model,
    producer: s.producer,
    opset: s.opset,
    input: s.input,
    rows: s.rows.map((r) => ({ layer: r.layer, scope: r.scope, ops: r.ops, nodes: r.nodes, outputs: r.outputs, params: r.params })),
    totals: {
      parameters: s.totals.parameters,
      unused_parameters: s.totals.unusedParameters,
      trainable_estimate: s.totals.trainableEstimate,
      trainable_notes: s.totals.trainableNotes,
    },
    sizes_mb: {
      input: round(s.sizes.inputMB),
      forward: round(s.sizes.forwardMB),
      forward_backward: round(s.sizes.forwardBackwardMB),
      params: round(s.sizes.paramsMB),
      total: round(s.sizes.totalMB),
    },
  };
}
