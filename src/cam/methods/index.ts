// The method registry: one module per method, looked up by its API name.
import type { Method, MethodName } from '../types.js';
import { ablationcam } from './ablationcam.js';
import { cam } from './cam.js';
import { dff } from './dff.js';
import { eigencam } from './eigencam.js';
import { eigengradcam } from './eigengradcam.js';
import { fem } from './fem.js';
import { finercam } from './finercam.js';
import { fullgrad } from './fullgrad.js';
import { gradcamElementwise } from './gradcam-elementwise.js';
import { gradcamPlusPlus } from './gradcam-plusplus.js';
import { gradcam } from './gradcam.js';
import { guidedBackprop } from './guided-backprop.js';
import { guidedGradcam } from './guided-gradcam.js';
import { hirescam } from './hirescam.js';
import { integratedGradients } from './integrated-gradients.js';
import { iscam } from './iscam.js';
import { kpcacam } from './kpcacam.js';
import { layercam } from './layercam.js';
import { randomcam } from './randomcam.js';
import { refinecam } from './refinecam.js';
import { saliency } from './saliency.js';
import { scorecam } from './scorecam.js';
import { segeigencam } from './segeigencam.js';
import { shapleycam } from './shapleycam.js';
import { smoothgrad } from './smoothgrad.js';
import { smoothgradcampp } from './smoothgradcampp.js';
import { sscam } from './sscam.js';
import { xgradcam } from './xgradcam.js';

export const METHODS: Readonly<Record<MethodName, Method>> = Object.freeze({
  gradcam,
  hirescam,
  'gradcam-elementwise': gradcamElementwise,
  'gradcam++': gradcamPlusPlus,
  xgradcam,
  layercam,
  eigencam,
  eigengradcam,
  scorecam,
  ablationcam,
  cam,
  fem,
  kpcacam,
  segeigencam,
  randomcam,
  shapleycam,
  finercam,
  iscam,
  sscam,
  smoothgradcampp,
  refinecam,
  dff,
  saliency,
  'integrated-gradients': integratedGradients,
  smoothgrad,
  'guided-backprop': guidedBackprop,
  'guided-gradcam': guidedGradcam,
  fullgrad,
});
