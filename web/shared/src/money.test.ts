import { describe, expect, it } from 'vitest';
import { formatBps, formatMinor, formatMoney, minorDigits, minorToDecimal, parseBps, parseMinor } from './money';

describe('money', () => {
  it('knows each currency’s minor digits', () => {
    expect(minorDigits('EUR')).toBe(2);
    expect(minorDigits('jpy')).toBe(0);
    expect(minorDigits('KWD')).toBe(3);
  });

  it('turns minor units into exact decimals, beyond float precision', () => {
    expect(minorToDecimal(125000n, 2)).toBe('1250.00');
    expect(minorToDecimal(-5n, 2)).toBe('-0.05');
    expect(minorToDecimal(7n, 0)).toBe('7');
    expect(minorToDecimal(9_007_199_254_740_993n, 2)).toBe('90071992547409.93');
  });

  it('formats in the locale from minor units', () => {
    expect(formatMinor(125000n, 'EUR', 'en-US')).toBe('€1,250.00');
    expect(formatMinor(125000n, 'EUR', 'de-DE')).toBe('1.250,00\u00a0€');
    expect(formatMinor(1250n, 'JPY', 'en-US')).toBe('¥1,250');
    expect(formatMinor(-1234n, 'USD', 'en-US')).toBe('-$12.34');
    // 2^53 + 1 cents: a float would print ...992.
    expect(formatMinor(9_007_199_254_740_993n, 'USD', 'en-US')).toBe('$90,071,992,547,409.93');
    expect(formatMoney(undefined)).toBe('—');
  });

  it('reads amounts typed in either convention', () => {
    expect(parseMinor('1250', 'EUR')).toBe(125000n);
    expect(parseMinor('1,250.50', 'EUR')).toBe(125050n);
    expect(parseMinor('1.250,50', 'EUR')).toBe(125050n);
    expect(parseMinor('12,5', 'EUR')).toBe(1250n);
    expect(parseMinor('1,250', 'EUR')).toBe(125000n);
    expect(parseMinor('0.05', 'EUR')).toBe(5n);
    expect(parseMinor('-3.5', 'EUR')).toBe(-350n);
    expect(parseMinor('1 250,00', 'EUR')).toBe(125000n);
    expect(parseMinor('1250', 'JPY')).toBe(1250n);
    expect(parseMinor('1.005', 'KWD')).toBe(1005n);
  });

  it('refuses what is not an amount', () => {
    expect(parseMinor('', 'EUR')).toBeNull();
    expect(parseMinor('abc', 'EUR')).toBeNull();
    expect(parseMinor('1.2.3,456', 'EUR')).toBeNull();
    expect(parseMinor('0.001', 'EUR')).toBeNull();
    expect(parseMinor('12.5', 'JPY')).toBeNull();
    expect(parseMinor('.', 'EUR')).toBeNull();
  });
});

describe('percentages', () => {
  it('reads percents into basis points without floats', () => {
    expect(parseBps('19')).toBe(1900);
    expect(parseBps('7.5')).toBe(750);
    expect(parseBps('7,25')).toBe(725);
    expect(parseBps('')).toBe(0);
    expect(parseBps('100')).toBe(10_000);
    expect(parseBps('100.01')).toBeNull();
    expect(parseBps('-1')).toBeNull();
    expect(parseBps('1.234')).toBeNull();
    expect(formatBps(1900)).toBe('19');
    expect(formatBps(750)).toBe('7.5');
    expect(formatBps(725)).toBe('7.25');
    expect(formatBps(0)).toBe('0');
  });
});
