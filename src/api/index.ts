// What the two front ends (the HTTP service and the CLI) share: the parameter kit and the answer shapes,
// so that the same parameter means the same thing, and the same result reads the same, in both.
export * from './params.js';
export * from './answers.js';
export * from './decode.js';
export * from './pictures.js';
