// Operator routes, all under /admin (one prefix to guard with API keys): POST /admin/reload loads the models
// folder as it is now without a restart — new and changed models load while the old versions keep serving,
// then the workers swap; removed models go. GET /models shows the new set at once.
import type { IRouter } from 'express';
import { CamserveError } from '../../errors/index.js';
import { requirePool, routeLabel, type AppContext } from '../context.js';
import { modelSummary } from './models.js';

export const ADMIN_ROUTES: Record<string, string[]> = {
  '/admin/reload': ['POST'],
};

/** Registers the routes on the app (not a sub-router: its automatic OPTIONS answer would shadow the app's 405 table). */
export function adminRoutes(router: IRouter, ctx: AppContext): void {
  router.post('/admin/reload', async (_req, res) => {
    routeLabel(res, '/admin/reload');
    res.setHeader('Cache-Control', 'no-store');
    const pool = requirePool(ctx);
    if (ctx.shuttingDown()) throw new CamserveError('shutting-down', 'the server is shutting down');
    if (!pool.reload) throw new CamserveError('not-ready', 'this server cannot reload its models');
    const r = await pool.reload();
    res.json({
      default: ctx.defaultModel() ?? null,
      added: r.changes.added, removed: r.changes.removed, replaced: r.changes.replaced,
      unchanged: r.changes.unchanged, kept_previous: r.changes.keptPrevious,
      models: r.models.map(modelSummary),
    });
  });
}
