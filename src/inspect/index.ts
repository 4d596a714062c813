// Looking inside a model: feature-map grids, summary, graph view, histograms (see each module).
export { modelFacts, scopeOf, modulePath, type ModelFacts, type FactNode } from './facts.js';
export {
  GRID_DEFAULTS, GridOptionError, channelStats, featureGrid, gridRgb, makeGrid, selectChannels, toByte,
  type ChannelSelection, type ChannelStats, type FeatureMaps, type GridLayout, type GridOptions, type GridResult,
} from './grid.js';
export { GRAPH_COLLAPSE, graphDot, graphToSvg, renderDot, type GraphOptions } from './graph.js';
export { HISTOGRAM_DEFAULTS, histogram, histogramPng, histogramSvg, type Histogram, type HistogramPanel } from './histogram.js';
export { formatSummary, summarize, type ModelSummary, type SummaryRow } from './summary.js';
export { summaryJson } from './json.js';
export { TensorProbe, type TensorsRequest, type TensorsResult, type LayerTensorsOut } from './tensors.js';
export { INSPECT_ROUTES, inspectRouter, type InspectDeps, type InspectPool } from '../http/routes/inspect.js';
export { featureGridOf, featureGridPng, graphSvg, histogramsOf, loadFacts, summaryOf, summaryText } from '../cli/inspect.js';
