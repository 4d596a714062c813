// Looking inside a model, as data and pictures: graph facts, feature-map grids, histograms, the
// torchsummary-style table and the graph view. Domain only: no HTTP, no model loading.
export { modelFacts, modulePath, scopeOf, type FactNode, type ModelFacts } from './facts.js';
export { GRID_DEFAULTS, GridOptionError, featureGrid, type ChannelSelection, type GridOptions, type GridResult } from './grid.js';
export { GRAPH_COLLAPSE, graphDot, renderDot, type GraphOptions } from './graph.js';
export { HISTOGRAM_DEFAULTS, gradientPanel, histogram, histogramPng, type Histogram, type HistogramPanel } from './histogram.js';
export { formatSummary, summarize, type ModelSummary, type SummaryRow } from './summary.js';
