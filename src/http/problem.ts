// RFC 9457 problem details: the one shape of every error answer (application/problem+json), made from a
// CamserveError through the one code → status table (errors/), with Retry-After where a retry may work.
import type { Response } from 'express';
import { CamserveError, ERROR_CODES, isRetryable, type ErrorCode } from '../errors/index.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The body of an error answer. Extensions: `parameter`, `allowed`, `received`, `request_id`, … */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  request_id?: string;
  [extension: string]: unknown;
}

export function problemBody(code: ErrorCode, detail: string, details: Readonly<Record<string, unknown>>, requestId?: string): ProblemBody {
  const t = ERROR_CODES[code];
  return {
    type: `urn:camserve:problem:${code}`, title: t.title, status: t.status, detail,
    ...details, ...(requestId ? { request_id: requestId } : {}),
  };
}

export interface ProblemOptions {
  requestId?: string;
  /** Retry-After of a retryable problem (503, 429) */
  retryAfterSeconds: number;
  /** headers of this answer only (Allow, WWW-Authenticate, …) */
  headers?: Record<string, string>;
}

/** Answers with the problem; a response whose headers are gone already is cut short instead. */
export function sendProblem(res: Response, err: CamserveError, opts: ProblemOptions): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // A rate limit sets its own Retry-After (when its window resets).
  if (isRetryable(err.code) && !res.getHeader('Retry-After')) res.setHeader('Retry-After', String(opts.retryAfterSeconds));
  for (const [k, v] of Object.entries(opts.headers ?? {})) res.setHeader(k, v);
  res.status(err.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problemBody(err.code, err.message, err.details, opts.requestId)));
}
