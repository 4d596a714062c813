// FullGrad: input-gradient × input plus the bias-gradients of every biased layer, each normalised and
// resized to the input; pytorch-grad-cam's FullGrad.
import { normalizeMap, resizeBilinear } from '../../render/index.js';
import { MethodError, type InputMethod } from '../types.js';

/**
 * FullGrad (Srinivas & Fleuret, "Full-Gradient Representation for Neural Network Visualization", NeurIPS
 * 2019), pytorch-grad-cam's form:
 *
 *   map = Σ_c ψ(|x_c ⊙ ∂y/∂x_c|) + Σ_layers Σ_c ψ(|b_c · ∂y/∂z_c|)
 *
 * where z is the output of a biased layer (Conv with a bias input, BatchNormalization with bias
 * B − mean·scale/√(var + ε)), b its bias and ψ min–max normalisation (scale_cam_image) followed by a
 * bilinear resize to the input (OpenCV's). In an exported graph a BatchNorm folded into its Conv is one
 * biased Conv: the same tensor and the same ψ(|b·g|) as the library's BatchNorm term (ψ does not see the
 * factor |b_c| > 0). The raw map, before the final normalisation. One run, with the gradients of every
 * biased layer's output fetched.
 */
export const fullgrad: InputMethod = {
  kind: 'input',
  name: 'fullgrad',
  relu: 'plain',
  runs: 1,
  biasGradients: true,
  async attribute(ctx) {
    if (!ctx.bias) throw new MethodError('fullgrad needs the gradients of the biased layers');
    const { height: H, width: W, channels: C, layout, data: x } = ctx.input;
    const hw = H * W;
    const out = new Float32Array(hw);
    const g = ctx.bias.inputGradient;
    const plane = new Float32Array(hw);
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < hw; i++) {
        const j = layout === 'NHWC' ? i * C + c : c * hw + i;
        plane[i] = Math.abs(g[j] * x[j]);
      }
      const n = normalizeMap({ width: W, height: H, data: plane }).data;
      for (let i = 0; i < hw; i++) out[i] += n[i];
    }
    for (const l of ctx.bias.layers) {
      const lhw = l.h * l.w;
      // ψ is linear after the per-channel normalisation: sum the channels at the layer's size, resize once.
      const sum = new Float32Array(lhw);
      const ch = new Float32Array(lhw);
      for (let k = 0; k < l.C; k++) {
        const b = l.bias[k];
        for (let i = 0; i < lhw; i++) ch[i] = Math.abs(b * l.G[k * lhw + i]);
        const n = normalizeMap({ width: l.w, height: l.h, data: ch }).data;
        for (let i = 0; i < lhw; i++) sum[i] += n[i];
      }
      const up = resizeBilinear({ width: l.w, height: l.h, data: sum }, W, H).data;
      for (let i = 0; i < hw; i++) out[i] += up[i];
    }
    return out;
  },
};
