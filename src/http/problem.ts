// RFC 9457 problem details: the one shape of every error answer (application/problem+json), with
// constructors for each kind of fault the service reports, so statuses and wording stay consistent.
import type { Response } from 'express';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The body of an error answer. Extensions: `parameter`, `allowed`, `received`, `request_id`. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  parameter?: string;
  allowed?: unknown;
  received?: unknown;
  request_id?: string;
  [extension: string]: unknown;
}

/** Problem types: `urn:camserve:problem:<slug>`, each with its fixed status and title. */
export const PROBLEM_TYPES = {
  'bad-parameter': { status: 400, title: 'Bad parameter' },
  'missing-image': { status: 400, title: 'No image' },
  'damaged-image': { status: 400, title: 'Image cannot be decoded' },
  'bad-request': { status: 400, title: 'Malformed request' },
  'not-found': { status: 404, title: 'Not found' },
  'unknown-model': { status: 404, title: 'Unknown model' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  'payload-too-large': { status: 413, title: 'Upload too large' },
  'image-too-large': { status: 413, title: 'Image has too many pixels' },
  'unsupported-media-type': { status: 415, title: 'Not a supported image' },
  'cannot-explain': { status: 422, title: 'Cannot explain' },
  'model-unavailable': { status: 422, title: 'Model failed to load' },
  internal: { status: 500, title: 'Internal error' },
  overloaded: { status: 503, title: 'Overloaded' },
  'not-ready': { status: 503, title: 'Not ready' },
  'shutting-down': { status: 503, title: 'Shutting down' },
} as const satisfies Record<string, { status: number; title: string }>;
export type ProblemSlug = keyof typeof PROBLEM_TYPES;

/** An error that becomes a problem answer; thrown by handlers, rendered by the error middleware. */
export class HttpProblem extends Error {
  override name = 'HttpProblem';
  readonly status: number;
  constructor(
    readonly slug: ProblemSlug,
    detail: string,
    readonly extensions: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.status = PROBLEM_TYPES[slug].status;
  }

  body(requestId?: string): ProblemBody {
    const t = PROBLEM_TYPES[this.slug];
    return {
      type: `urn:camserve:problem:${this.slug}`, title: t.title, status: t.status, detail: this.message,
      ...this.extensions, ...(requestId ? { request_id: requestId } : {}),
    };
  }
}

/** 400 naming the parameter, what it accepts and what it got (as sharp names a bad option). */
export function badParameter(parameter: string, allowed: unknown, received: unknown, detail: string): HttpProblem {
  return new HttpProblem('bad-parameter', detail, { parameter, allowed, received });
}

export function sendProblem(res: Response, problem: HttpProblem, requestId?: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const [k, v] of Object.entries(problem.headers)) res.setHeader(k, v);
  res.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem.body(requestId)));
}
