// Faithfulness metrics of CAMs (pure functions; the model comes in as a function): pytorch-grad-cam's
// confidence changes, ROAD and ARCC, and TorchCAM's deletion/insertion.
export * from './types.js';
export * from './imputation.js';
export * from './confidence.js';
export * from './road.js';
export * from './arcc.js';
export * from './deletion-insertion.js';
export * from './request.js';
