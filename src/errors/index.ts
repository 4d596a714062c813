// The errors camserve reports, as data: one closed union of codes, one table that gives each code its
// HTTP status, title and CLI exit code, and one error class that carries a code across layers and threads.

/**
 * Every kind of failure the service or the CLI reports. The code is also the problem type's slug on the
 * wire (`urn:camserve:problem:<code>`), so codes are part of the HTTP contract: add, never rename.
 */
export const ERROR_CODES = {
  'bad-parameter': { status: 400, title: 'Bad parameter', exit: 2 },
  'missing-image': { status: 400, title: 'No image', exit: 2 },
  'damaged-image': { status: 400, title: 'Image cannot be decoded', exit: 3 },
  'bad-request': { status: 400, title: 'Malformed request', exit: 2 },
  unauthorized: { status: 401, title: 'Unauthorized', exit: 2 },
  'not-found': { status: 404, title: 'Not found', exit: 2 },
  'unknown-model': { status: 404, title: 'Unknown model', exit: 4 },
  'method-not-allowed': { status: 405, title: 'Method not allowed', exit: 2 },
  'request-timeout': { status: 408, title: 'Request not received in time', exit: 2 },
  cancelled: { status: 409, title: 'Cancelled', exit: 6 },
  gone: { status: 410, title: 'Gone', exit: 2 },
  'payload-too-large': { status: 413, title: 'Upload too large', exit: 3 },
  'image-too-large': { status: 413, title: 'Image has too many pixels', exit: 3 },
  'header-too-large': { status: 431, title: 'Request header too large', exit: 2 },
  'unsupported-media-type': { status: 415, title: 'Not a supported image', exit: 3 },
  'expectation-failed': { status: 417, title: 'Expectation failed', exit: 2 },
  'cannot-explain': { status: 422, title: 'Cannot explain', exit: 5 },
  'idempotency-key-reused': { status: 422, title: 'Idempotency key reused', exit: 2 },
  'model-unavailable': { status: 422, title: 'Model failed to load', exit: 4 },
  'rate-limited': { status: 429, title: 'Too many requests', exit: 6 },
  internal: { status: 500, title: 'Internal error', exit: 1 },
  overloaded: { status: 503, title: 'Overloaded', exit: 6 },
  'not-ready': { status: 503, title: 'Not ready', exit: 6 },
  'shutting-down': { status: 503, title: 'Shutting down', exit: 6 },
  'deadline-exceeded': { status: 503, title: 'Deadline exceeded', exit: 6 },
  'model-changed': { status: 503, title: 'Model replaced', exit: 6 },
} as const satisfies Record<string, { status: number; title: string; exit: number }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === 'string' && Object.hasOwn(ERROR_CODES, s);
}

/** Codes whose answer invites the client to try again later (HTTP: 503 with Retry-After; 429 likewise). */
export function isRetryable(code: ErrorCode): boolean {
  return ERROR_CODES[code].status === 503 || code === 'rate-limited';
}

/**
 * An error with a code from the union and optional details (JSON-safe values: the parameter, what is
 * allowed, what was received, the model). Thrown by every layer; the HTTP layer and the CLI turn it into
 * their answer through the one table above.
 */
export class CamserveError extends Error {
  override name = 'CamserveError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  /** The error as structured-clone-safe data (for postMessage between threads). */
  toData(): ErrorData {
    return { code: this.code, message: this.message, details: jsonSafe(this.details) };
  }
}

/** What crosses a thread boundary: a code, a message and details, never a class. */
export interface ErrorData {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

/** Any thrown value as data: a CamserveError keeps its code; anything else is `internal`. */
export function toErrorData(e: unknown): ErrorData {
  if (e instanceof CamserveError) return e.toData();
  const message = e instanceof Error ? e.message : String(e);
  return { code: 'internal', message };
}

/** The error that `toErrorData` described, rebuilt on the other side. */
export function fromErrorData(d: ErrorData): CamserveError {
  return new CamserveError(isErrorCode(d.code) ? d.code : 'internal', String(d.message), d.details ?? {});
}

/** A model that cannot be read or used (unreadable, missing data file, unsupported input). */
export class ModelError extends CamserveError {
  override name = 'ModelError';
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('model-unavailable', message, details);
  }
}

/** A method, layer or class that cannot be explained on this model (an op without a gradient rule, …). */
export class ExplainError extends CamserveError {
  override name = 'ExplainError';
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('cannot-explain', message, details);
  }
}

/** 400 naming the parameter, what it accepts and what it got (as sharp names a bad option). */
export function badParameter(parameter: string, allowed: unknown, received: unknown, detail: string): CamserveError {
  return new CamserveError('bad-parameter', detail, { parameter, allowed, received });
}

/** Work abandoned because its caller left, asked to stop, or the server is stopping. */
export function cancelled(why = 'the request was cancelled'): CamserveError {
  return new CamserveError('cancelled', why);
}

/** Details copied through JSON (drops functions, turns bigints into strings), so they clone anywhere. */
function jsonSafe(details: Readonly<Record<string, unknown>>): Record<string, unknown> {
  if (Object.keys(details).length === 0) return {};
  try {
    return JSON.parse(JSON.stringify(details, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, unknown>;
  } catch {
    return {};
  }
}
