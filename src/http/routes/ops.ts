// Operations routes: liveness (/healthz), readiness (/readyz), Prometheus metrics and the API
// description. None of them waits for a worker.
import type { IRouter } from 'express';
import { CamserveError } from '../../errors/index.js';
import { requirePool, routeLabel, type AppContext } from '../context.js';

export const OPS_ROUTES: Record<string, string[]> = {
  '/healthz': ['GET', 'HEAD'],
  '/readyz': ['GET', 'HEAD'],
  '/metrics': ['GET', 'HEAD'],
  '/openapi.yaml': ['GET', 'HEAD'],
};

/** Registers the routes on the app (not a sub-router: its automatic OPTIONS answer would shadow the app's 405 table). */
export function opsRoutes(router: IRouter, ctx: AppContext): void {
  router.get('/healthz', (_req, res) => {
    routeLabel(res, '/healthz');
    res.json({ status: 'ok', uptime_s: Math.round(process.uptime()) });
  });

  router.get('/readyz', (_req, res) => {
    routeLabel(res, '/readyz');
    if (ctx.shuttingDown()) throw new CamserveError('shutting-down', 'the server is shutting down');
    const pool = requirePool(ctx);
    const models = pool.models();
    const ok = models.filter((m) => m.ok).length;
    if (ok === 0) {
      throw new CamserveError('not-ready', `no model loaded${models.length ? ': ' + models.map((m) => `${m.id}: ${m.ok ? 'ok' : m.error}`).join('; ') : ''}`);
    }
    res.json({ status: 'ready', models: { ready: ok, failed: models.length - ok }, default_model: ctx.defaultModel() ?? null, ...pool.stats() });
  });

  router.get('/metrics', async (_req, res) => {
    routeLabel(res, '/metrics');
    res.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });

  router.get('/openapi.yaml', (_req, res, next) => {
    routeLabel(res, '/openapi.yaml');
    // dotfiles: 'allow', so an install path with a dot-folder (~/.local/…) still serves the file.
    res.type('application/yaml').sendFile(ctx.config.openapiFile, { dotfiles: 'allow' }, (err) => {
      if (err && !res.headersSent) next(new CamserveError('internal', `the API description cannot be read: ${(err as Error).message}`));
    });
  });
}
