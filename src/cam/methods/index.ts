// The method registry: one module per method, looked up by its API name.
import type { CamMethod, MethodName } from '../types.js';
import { ablationcam } from './ablationcam.js';
import { cam } from './cam.js';
import { eigencam } from './eigencam.js';
import { eigengradcam } from './eigengradcam.js';
import { gradcamElementwise } from './gradcam-elementwise.js';
import { gradcamPlusPlus } from './gradcam-plusplus.js';
import { gradcam } from './gradcam.js';
import { hirescam } from './hirescam.js';
import { layercam } from './layercam.js';
import { scorecam } from './scorecam.js';
import { xgradcam } from './xgradcam.js';

export const METHODS: Readonly<Record<MethodName, CamMethod>> = Object.freeze({
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
});
