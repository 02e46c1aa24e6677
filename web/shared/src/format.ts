/**
 * Dates and times at the boundary: protobuf `Timestamp` and `sentra.type.v1.Date` to the user's
 * locale and back from form inputs.
 */
import { timestampDate, timestampFromDate, type Timestamp } from '@bufbuild/protobuf/wkt';

/** Anything shaped like `sentra.type.v1.Date`. */
export interface DateLike {
  year: number;
  month: number;
  day: number;
}

/** "2 Dec 2026, 14:05" in the user's locale; a dash when absent. */
export function formatTimestamp(ts: Timestamp | undefined, locale?: string): string {
  if (!ts) return '—';
  return timestampDate(ts).toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' });
}

/** "2 Dec 2026" for a calendar date; a dash when absent or empty. */
export function formatDate(d: DateLike | undefined, locale?: string): string {
  if (!d || d.year === 0) return '—';
  return new Date(Date.UTC(d.year, d.month - 1, d.day)).toLocaleDateString(locale, {
    dateStyle: 'medium',
    timeZone: 'UTC',
  });
}

/** `<input type="date">` value ("2026-12-02") from a calendar date. */
export function dateToInput(d: DateLike | undefined): string {
  if (!d || d.year === 0) return '';
  return `${String(d.year).padStart(4, '0')}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;
}

/** A calendar date from an `<input type="date">` value; `undefined` when empty or malformed. */
export function dateFromInput(value: string): DateLike | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!m) return undefined;
  return { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) };
}

/** Today's calendar date in the browser's time zone. */
export function today(): DateLike {
  const now = new Date();
  return { year: now.getFullYear(), month: now.getMonth() + 1, day: now.getDate() };
}

/** `<input type="datetime-local" step="1">` value in local time, e.g. "2026-12-02T14:05:09". */
export function instantToInput(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}T${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
}

/** A `Timestamp` from a datetime-local value (read as local time); `undefined` when empty. */
export function instantFromInput(value: string): Timestamp | undefined {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : timestampFromDate(date);
}

export { timestampDate, timestampFromDate };
