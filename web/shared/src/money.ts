/**
 * Money in the browser: amounts arrive as integer minor units (`bigint`) with an ISO-4217 code and
 * are formatted with `Intl.NumberFormat` from an exact decimal string, never through a float.
 */

/** Anything shaped like `sentra.type.v1.Money`. */
export interface MoneyLike {
  currencyCode: string;
  amountMinor: bigint;
}

const digitsCache = new Map<string, number>();

/** Fraction digits of a currency (EUR 2, JPY 0, KWD 3), as `Intl` knows them. */
export function minorDigits(currency: string): number {
  const code = currency.toUpperCase();
  let digits = digitsCache.get(code);
  if (digits === undefined) {
    try {
      digits = new Intl.NumberFormat('en', { style: 'currency', currency: code }).resolvedOptions()
        .maximumFractionDigits ?? 2;
    } catch {
      digits = 2;
    }
    digitsCache.set(code, digits);
  }
  return digits;
}

/** `123456n`, 2 -> `"1234.56"`; exact for any size. */
export function minorToDecimal(minor: bigint, digits: number): string {
  const negative = minor < 0n;
  const abs = (negative ? -minor : minor).toString().padStart(digits + 1, '0');
  const whole = digits === 0 ? abs : abs.slice(0, -digits);
  const fraction = digits === 0 ? '' : `.${abs.slice(-digits)}`;
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

/** Formats minor units in the user's locale, e.g. `formatMinor(125000n, 'EUR', 'de-DE')` -> "1.250,00 €". */
export function formatMinor(minor: bigint, currency: string, locale?: string): string {
  const code = currency.toUpperCase() || 'EUR';
  const decimal = minorToDecimal(minor, minorDigits(code));
  try {
    return new Intl.NumberFormat(locale, { style: 'currency', currency: code }).format(decimal as `${number}`);
  } catch {
    return `${decimal} ${code}`;
  }
}

/** Formats a `Money`; an absent amount reads as a dash. */
export function formatMoney(money: MoneyLike | undefined, locale?: string): string {
  if (!money || !money.currencyCode) return '—';
  return formatMinor(money.amountMinor, money.currencyCode, locale);
}

/**
 * Reads an amount typed by a person ("1250", "1,250.50", "1.250,50", "-3.5") into minor units of
 * `currency`. The last `.` or `,` followed by at most the currency's digits is the decimal mark;
 * other separators (and spaces, apostrophes) group thousands. Returns `null` when the text is not
 * an amount or has more decimals than the currency allows.
 */
export function parseMinor(text: string, currency: string): bigint | null {
  const digits = minorDigits(currency);
  let s = text.trim().replace(/[\s'\u00a0\u202f]/g, '');
  if (s === '') return null;
  let negative = false;
  if (s.startsWith('-')) {
    negative = true;
    s = s.slice(1);
  }
  if (!/^[0-9.,]+$/.test(s) || !/[0-9]/.test(s)) return null;
  let whole = s;
  let fraction = '';
  const lastMark = Math.max(s.lastIndexOf('.'), s.lastIndexOf(','));
  if (lastMark >= 0) {
    const mark = s[lastMark] as string;
    const after = s.slice(lastMark + 1);
    const bothKinds = s.includes('.') && s.includes(',');
    const repeated = s.split(mark).length > 2;
    // "1,250" and "1.250" group thousands for a two-digit currency; "1,25", "1.250,5" and
    // "0.001" do not (a grouped number starts with 1 to 3 digits, not with zero).
    const leadGroup = /^[1-9][0-9]{0,2}$/.test(s.split(/[.,]/)[0] ?? '');
    const grouping = !bothKinds && leadGroup && (repeated || (after.length === 3 && digits !== 3));
    if (!grouping) {
      whole = s.slice(0, lastMark);
      fraction = after;
    }
  }
  whole = whole.replace(/[.,]/g, '');
  if (!/^[0-9]*$/.test(whole) || !/^[0-9]*$/.test(fraction) || fraction.length > digits) return null;
  if (whole === '' && fraction === '') return null;
  const minor = BigInt((whole || '0') + fraction.padEnd(digits, '0'));
  return negative ? -minor : minor;
}

/** "19" or "7.5" (percent) -> basis points (1900, 750); `null` unless 0–100 with at most 2 decimals. */
export function parseBps(text: string): number | null {
  const m = /^(\d{1,3})(?:[.,](\d{1,2}))?$/.exec(text.trim() === '' ? '0' : text.trim());
  if (!m) return null;
  const bps = Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  return bps <= 10_000 ? bps : null;
}

/** Basis points as a percent for an input: 1900 -> "19", 750 -> "7.5". */
export function formatBps(bps: number): string {
  const whole = Math.trunc(bps / 100);
  const frac = String(bps % 100).padStart(2, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : String(whole);
}
