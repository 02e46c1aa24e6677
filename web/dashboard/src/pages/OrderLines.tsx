/**
 * The line editor of a draft order: description, quantity, unit price, tax and discount per line.
 * Amounts are typed as text and sent as integer minor units; totals come from the server, which
 * rounds every line on its own.
 */
import { useEffect, useState } from 'react';
import { ActionIcon, Button, Card, Group, SimpleGrid, Stack, Text, TextInput } from '@mantine/core';
import type { Order, OrderLine } from '@sentra/shared/gen/sentra/sales/v1/resources_pb';
import { formatBps, formatMoney, minorDigits, minorToDecimal, parseBps, parseMinor } from '@sentra/shared/money';

interface Row {
  key: string;
  description: string;
  quantity: string;
  unitPrice: string;
  tax: string;
  discount: string;
}

function toRow(line: OrderLine, currency: string): Row {
  return {
    key: crypto.randomUUID(),
    description: line.description,
    quantity: line.quantity,
    unitPrice: line.unitPrice ? minorToDecimal(line.unitPrice.amountMinor, minorDigits(currency)) : '',
    tax: formatBps(line.taxRateBps),
    discount: formatBps(line.discountBps),
  };
}

const blank = (): Row => ({ key: crypto.randomUUID(), description: '', quantity: '1', unitPrice: '', tax: '0', discount: '0' });

export interface LineInput {
  description: string;
  quantity: string;
  unitPrice: { currencyCode: string; amountMinor: bigint };
  taxRateBps: number;
  discountBps: number;
}

/** The rows as request lines, or the first problem found, naming the line and the field. */
function toLines(rows: Row[], currency: string): LineInput[] | string {
  const lines: LineInput[] = [];
  for (const [i, row] of rows.entries()) {
    const n = i + 1;
    if (!row.description.trim()) return `Line ${n}: enter a description.`;
    if (!/^\d+([.,]\d{1,3})?$/.test(row.quantity.trim())) return `Line ${n}: the quantity must be a number with at most 3 decimals.`;
    const price = parseMinor(row.unitPrice, currency);
    if (price === null) return `Line ${n}: enter the unit price in ${currency}, such as 120.00.`;
    const tax = parseBps(row.tax);
    if (tax === null) return `Line ${n}: the tax must be a percentage between 0 and 100.`;
    const discount = parseBps(row.discount);
    if (discount === null) return `Line ${n}: the discount must be a percentage between 0 and 100.`;
    lines.push({
      description: row.description.trim(),
      quantity: row.quantity.trim().replace(',', '.'),
      unitPrice: { currencyCode: currency, amountMinor: price },
      taxRateBps: tax,
      discountBps: discount,
    });
  }
  return lines;
}

export function OrderLinesEditor({
  order,
  saving,
  onSave,
}: {
  order: Order;
  saving: boolean;
  onSave: (lines: LineInput[]) => Promise<unknown>;
}) {
  const currency = order.currencyCode;
  const [rows, setRows] = useState<Row[]>(() => order.lines.map((l) => toRow(l, currency)));
  const [invalid, setInvalid] = useState<string | null>(null);
  // A saved (or concurrently changed) order redraws the rows from the server's version.
  useEffect(() => {
    setRows(order.lines.map((l) => toRow(l, currency)));
    setInvalid(null);
  }, [order.etag, order.lines, currency]);

  const change = (key: string, field: keyof Row, value: string) =>
    setRows((old) => old.map((r) => (r.key === key ? { ...r, [field]: value } : r)));

  return (
    <Stack gap="sm" data-testid="line-editor">
      {rows.length === 0 && (
        <Text size="sm" c="dimmed">
          No lines yet. Add what the client orders.
        </Text>
      )}
      {rows.map((row, i) => (
        <Card key={row.key} withBorder padding="sm" data-testid="order-line">
          <Group justify="space-between" mb={4}>
            <Text size="xs" fw={700} c="dimmed">
              Line {i + 1}
            </Text>
            <Group gap="xs">
              <Text size="sm" data-testid="line-total">
                {order.lines[i] && order.lines[i]!.description === row.description ? formatMoney(order.lines[i]!.total) : ''}
              </Text>
              <ActionIcon variant="subtle" color="red" aria-label={`Remove line ${i + 1}`} onClick={() => setRows((old) => old.filter((r) => r.key !== row.key))}>
                ✕
              </ActionIcon>
            </Group>
          </Group>
          <SimpleGrid cols={{ base: 2, sm: 5 }} spacing="xs">
            <TextInput
              label="Description"
              value={row.description}
              onChange={(e) => change(row.key, 'description', e.currentTarget.value)}
              style={{ gridColumn: 'span 2' }}
            />
            <TextInput label="Quantity" inputMode="decimal" value={row.quantity} onChange={(e) => change(row.key, 'quantity', e.currentTarget.value)} />
            <TextInput
              label={`Unit price (${currency})`}
              inputMode="decimal"
              value={row.unitPrice}
              onChange={(e) => change(row.key, 'unitPrice', e.currentTarget.value)}
            />
            <Group gap="xs" wrap="nowrap">
              <TextInput label="Tax %" inputMode="decimal" value={row.tax} onChange={(e) => change(row.key, 'tax', e.currentTarget.value)} />
              <TextInput label="Disc. %" inputMode="decimal" value={row.discount} onChange={(e) => change(row.key, 'discount', e.currentTarget.value)} />
            </Group>
          </SimpleGrid>
        </Card>
      ))}
      {invalid && (
        <Text c="red" size="sm" role="alert">
          {invalid}
        </Text>
      )}
      <Group>
        <Button variant="default" onClick={() => setRows((old) => [...old, blank()])}>
          Add line
        </Button>
        <Button
          loading={saving}
          onClick={() => {
            const lines = toLines(rows, currency);
            if (typeof lines === 'string') return setInvalid(lines);
            setInvalid(null);
            void onSave(lines).catch(() => undefined);
          }}
        >
          Save lines
        </Button>
      </Group>
    </Stack>
  );
}
