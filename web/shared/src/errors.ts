/**
 * What went wrong, in words a person can act on: a failed call becomes a `Problem` with the gRPC
 * code, the server's `ErrorInfo` reason, the fields its `BadRequest` names, and a sentence.
 */
import { Code, ConnectError } from '@connectrpc/connect';
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from './gen/google/rpc/error_details_pb';

export { Code };

/** A failed call, ready to show. */
export interface Problem {
  code: Code;
  /** `ErrorInfo.reason`, e.g. `LEAD_NOT_FOUND`, `FOREIGN_DOMAIN`. */
  reason: string | null;
  /** The sentence to show. */
  message: string;
  /** Field path (as the server names it, e.g. `lead.email`) -> what is wrong with it. */
  fields: Record<string, string>;
  /** For RESOURCE_EXHAUSTED with `RetryInfo`: when to try again. */
  retryAfterMs: number | null;
}

const GENERIC: Partial<Record<Code, string>> = {
  [Code.Unauthenticated]: 'Your session has ended. Please sign in again.',
  [Code.PermissionDenied]: 'You do not have permission to do this.',
  [Code.NotFound]: 'This record does not exist, or you cannot see it.',
  [Code.Aborted]: 'Someone else changed this record in the meantime. The latest version is shown; please try again.',
  [Code.Unavailable]: 'The service is unavailable right now. Please try again in a moment.',
  [Code.DeadlineExceeded]: 'The server took too long to answer. Please try again.',
  [Code.Internal]: 'Something went wrong on our side. Please try again; if it keeps happening, contact support.',
  [Code.Unknown]: 'Something went wrong. Please try again.',
  [Code.Canceled]: 'The request was cancelled.',
};

function capitalize(text: string): string {
  return text.length === 0 ? text : text[0]!.toUpperCase() + text.slice(1);
}

function isProblem(value: unknown): value is Problem {
  return typeof value === 'object' && value !== null && 'code' in value && 'fields' in value && 'message' in value;
}

/** Turns anything thrown by a call into a `Problem` (a `Problem` stays as it is). */
export function toProblem(error: unknown): Problem {
  if (isProblem(error)) return error;
  const err = ConnectError.from(error);
  const info = err.findDetails(ErrorInfoSchema)[0];
  const fields: Record<string, string> = {};
  for (const bad of err.findDetails(BadRequestSchema)) {
    for (const v of bad.fieldViolations) fields[v.field] = capitalize(v.description);
  }
  const retry = err.findDetails(RetryInfoSchema)[0]?.retryDelay;
  const retryAfterMs = retry ? Number(retry.seconds) * 1000 + Math.ceil(retry.nanos / 1e6) : null;
  // Client mistakes carry a message written for people; infrastructure failures get a generic one
  // (their text may be technical).
  const serverText = err.rawMessage.trim();
  let message: string;
  switch (err.code) {
    case Code.InvalidArgument:
    case Code.FailedPrecondition:
    case Code.AlreadyExists:
    case Code.OutOfRange:
      message = serverText ? capitalize(serverText) : 'The request was not accepted.';
      break;
    case Code.ResourceExhausted:
      message =
        retryAfterMs !== null
          ? `Too many requests. Please wait ${Math.max(1, Math.ceil(retryAfterMs / 1000))} s and try again.`
          : serverText
            ? capitalize(serverText)
            : 'Too many requests. Please wait a moment and try again.';
      break;
    case Code.PermissionDenied:
      message =
        info?.reason === 'FOREIGN_DOMAIN'
          ? 'Your account does not belong to this workspace.'
          : serverText
            ? `You do not have permission to do this (${serverText}).`
            : GENERIC[Code.PermissionDenied]!;
      break;
    default:
      message = GENERIC[err.code] ?? 'Something went wrong. Please try again.';
  }
  return { code: err.code, reason: info?.reason ?? null, message, fields, retryAfterMs };
}

/** The message for one form field: the violation naming `path` (`lead.email`) or ending in it. */
export function fieldError(problem: Problem | null | undefined, path: string): string | undefined {
  if (!problem) return undefined;
  if (problem.fields[path]) return problem.fields[path];
  const suffix = `.${path}`;
  const key = Object.keys(problem.fields).find((k) => k.endsWith(suffix) || path.endsWith(`.${k}`));
  return key ? problem.fields[key] : undefined;
}

/** Whether the failure is the optimistic-concurrency conflict (stale etag). */
export function isConflict(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Aborted;
}
