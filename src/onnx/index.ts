// ONNX model I/O and graph analysis: the protobuf schema, a model held as its bytes plus a decoded view,
// proto builders, onnxruntime sessions and the probe run, and every graph traversal.
export * from './proto.js';
export * from './model.js';
export * from './builder.js';
export * from './session.js';
export * from './graph.js';
export * from './files.js';
export * from './splice.js';
export * from './twin.js';
export * from './layers.js';
export * from './views.js';
export * from './batch.js';
export * from './fold.js';
