// Commands about a model itself: its candidate layers, the torchsummary-style table, the graph view.
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { GRAPH_PARAMETERS, collectParameters, parseGraphOptions, summaryJson } from '../../api/index.js';
import { summarize } from '../../inspect/index.js';
import { asParameters, requireModel, withModel } from '../common.js';
import { graphSvg, loadFacts, summaryText } from '../inspect.js';

export async function layersCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { model: { type: 'string', short: 'm' } } });
  await withModel(requireModel(values.model), async (rt) => {
    const { info } = rt;
    process.stdout.write(`${info.id}: input ${info.inputName} [${info.inputDims.join(', ')}], logits ${info.logits} (${info.numClasses} classes), opset ${info.opset}\n`);
    process.stdout.write(`predictions: ${info.runs.predictions}; activations and gradients: ${info.runs.gradients}${info.twin ? ` (${info.twin.notes.join(', ')})` : ''}; batch: ${info.batch.note}\n`);
    for (const w of info.warnings) process.stdout.write(`warning: ${w}\n`);
    for (const c of info.candidateLayers) {
      const names = c.tensor !== c.name ? `  (tensor ${c.tensor}, node ${c.node})` : c.node !== c.name ? `  (node ${c.node})` : '';
      process.stdout.write(`${c.name === info.defaultLayer ? '*' : ' '} ${c.name}  [${c.dims.join(', ')}]  ${c.op}${names}\n      ${c.why}\n`);
    }
  });
}

export async function summaryCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { model: { type: 'string', short: 'm' }, json: { type: 'boolean' } } });
  const model = requireModel(values.model);
  if (values.json) process.stdout.write(`${JSON.stringify(summaryJson(summarize(await loadFacts(model))))}\n`);
  else process.stdout.write(`${await summaryText(model)}\n`);
}

export async function graphCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { model: { type: 'string', short: 'm' }, collapse: { type: 'string' }, depth: { type: 'string' }, rankdir: { type: 'string' }, dot: { type: 'boolean' }, out: { type: 'string', short: 'o' } },
  });
  const opts = parseGraphOptions(collectParameters('camserve graph', GRAPH_PARAMETERS, asParameters({ collapse: values.collapse, depth: values.depth, rankdir: values.rankdir })));
  const text = await graphSvg(requireModel(values.model), { ...opts, format: values.dot ? 'dot' : 'svg' });
  if (values.out) await writeFile(values.out, text);
  else process.stdout.write(text);
}
