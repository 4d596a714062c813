// Methods implemented and checked against their libraries but not served (not in METHOD_NAMES): see
// CANDIDATE_METHOD_NAMES in ../types.ts for why.
import type { CamMethod, CandidateMethodName } from '../types.js';
import { fem } from './fem.js';
import { finercam } from './finercam.js';
import { iscam } from './iscam.js';
import { kpcacam } from './kpcacam.js';
import { randomcam } from './randomcam.js';
import { segeigencam } from './segeigencam.js';
import { shapleycam } from './shapleycam.js';
import { sscam } from './sscam.js';

export const CANDIDATE_METHODS: Readonly<Record<CandidateMethodName, CamMethod>> = Object.freeze({
  fem, kpcacam, randomcam, segeigencam, shapleycam, finercam, iscam, sscam,
});
