/**
 * The tables both apps show, written once: the list table every list page uses, line items, amount
 * summaries, and lists of invoices and orders (each row linking where the app wants it to).
 */
import type { ReactNode } from 'react';
import { Anchor, Badge, Table } from '@mantine/core';
import { Link } from 'react-router';
import type { Timestamp } from '@bufbuild/protobuf/wkt';
import type { Invoice } from '../gen/sentra/finance/v1/resources_pb';
import type { Order } from '../gen/sentra/sales/v1/resources_pb';
import { INVOICE_STATUS_COLOR, INVOICE_STATUS_LABEL, ORDER_STATE_COLOR, ORDER_STATE_LABEL } from '../labels';
import { formatBps, type MoneyLike } from '../money';
import { Day, Money, When } from './components';

/** A column heading; `right` aligns numbers. `false` leaves the column out. */
export type Column = string | { label: string; right: true } | false;

/** A list that scrolls sideways on narrow screens: the header row from `columns`, rows as children. */
export function ListTable({
  columns,
  minWidth,
  testId,
  children,
}: {
  columns: Column[];
  minWidth: number;
  testId?: string;
  children: ReactNode;
}) {
  return (
    <Table.ScrollContainer minWidth={minWidth}>
      <Table highlightOnHover data-testid={testId}>
        <Table.Thead>
          <Table.Tr>
            {columns.map((c) =>
              c === false ? null : typeof c === 'string' ? (
                <Table.Th key={c}>{c}</Table.Th>
              ) : (
                <Table.Th key={c.label} ta="right">
                  {c.label}
                </Table.Th>
              ),
            )}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>{children}</Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

/** What order lines and invoice lines have in common. */
export interface LineItem {
  description: string;
  quantity: string;
  unitPrice?: MoneyLike;
  taxRateBps: number;
  discountBps: number;
  total?: MoneyLike;
}

/** Lines with quantity, unit price, discount and tax rates, and the server's line totals. */
export function LineItemsTable({ lines, testId, compact }: { lines: LineItem[]; testId?: string; compact?: boolean }) {
  return (
    <Table.ScrollContainer minWidth={compact ? 360 : 560}>
      <Table data-testid={testId}>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Description</Table.Th>
            <Table.Th ta="right">Qty</Table.Th>
            {!compact && <Table.Th ta="right">Unit price</Table.Th>}
            {!compact && <Table.Th ta="right">Disc.</Table.Th>}
            {!compact && <Table.Th ta="right">Tax</Table.Th>}
            <Table.Th ta="right">Amount</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {lines.map((l, i) => (
            <Table.Tr key={i}>
              <Table.Td>{l.description}</Table.Td>
              <Table.Td ta="right">{l.quantity}</Table.Td>
              {!compact && (
                <Table.Td ta="right">
                  <Money value={l.unitPrice} />
                </Table.Td>
              )}
              {!compact && <Table.Td ta="right">{formatBps(l.discountBps)} %</Table.Td>}
              {!compact && <Table.Td ta="right">{formatBps(l.taxRateBps)} %</Table.Td>}
              <Table.Td ta="right">
                <Money value={l.total} />
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

/** Label/amount rows (subtotal … total, paid, balance); `strong` rows in bold. */
export function AmountsTable({
  rows,
  testId,
  width,
}: {
  rows: [label: string, value: MoneyLike | undefined, strong?: boolean][];
  testId?: string;
  width?: number;
}) {
  return (
    <Table w={width} withRowBorders={width === undefined} data-testid={testId}>
      <Table.Tbody>
        {rows.map(([label, value, strong]) => (
          <Table.Tr key={label}>
            <Table.Td fw={strong ? 700 : 400}>{label}</Table.Td>
            <Table.Td ta="right" fw={strong ? 700 : 400} data-testid={`amount-${label.toLowerCase().replace(/ /g, '-')}`}>
              <Money value={value} />
            </Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

/** The amounts of an invoice, as `AmountsTable` rows. */
export function invoiceAmounts(i: Invoice): [string, MoneyLike | undefined, boolean][] {
  return [
    ['Subtotal', i.subtotal, false],
    ['Discount', i.discountTotal, false],
    ['Tax', i.taxTotal, false],
    ['Total', i.total, true],
    ['Paid', i.amountPaid, false],
    ['Credited', i.amountCredited, false],
    ['Balance due', i.balance, true],
  ];
}

/** Invoices with status, due date and balance; `client` adds a client column. */
export function InvoicesTable({
  invoices,
  href,
  client,
  testId,
}: {
  invoices: Invoice[];
  href: (invoice: Invoice) => string;
  client?: (invoice: Invoice) => ReactNode;
  testId?: string;
}) {
  return (
    <ListTable minWidth={client ? 640 : 480} testId={testId} columns={['Invoice', !!client && 'Client', 'Status', 'Due', { label: 'Total', right: true }, { label: 'Balance', right: true }]}>
      {invoices.map((i) => (
        <Table.Tr key={i.id} data-testid="invoice-row">
          <Table.Td>
            <Anchor component={Link} to={href(i)}>
              {i.number || 'Draft'}
            </Anchor>
          </Table.Td>
          {client && <Table.Td>{client(i)}</Table.Td>}
          <Table.Td>
            <Badge color={INVOICE_STATUS_COLOR[i.status]}>{INVOICE_STATUS_LABEL[i.status]}</Badge>
          </Table.Td>
          <Table.Td>
            <Day value={i.dueDate} />
          </Table.Td>
          <Table.Td ta="right">
            <Money value={i.total} />
          </Table.Td>
          <Table.Td ta="right">
            <Money value={i.balance} />
          </Table.Td>
        </Table.Tr>
      ))}
    </ListTable>
  );
}

function created(ts: Timestamp | undefined) {
  return <When value={ts} />;
}

/** Orders with creation time, state and total; `client` adds a client column. */
export function OrdersTable({
  orders,
  href,
  client,
  testId,
}: {
  orders: Order[];
  href: (order: Order) => string;
  client?: (order: Order) => ReactNode;
  testId?: string;
}) {
  return (
    <ListTable minWidth={client ? 560 : 400} testId={testId} columns={['Created', !!client && 'Client', 'State', { label: 'Total', right: true }]}>
      {orders.map((o) => (
        <Table.Tr key={o.id}>
          <Table.Td>
            <Anchor component={Link} to={href(o)}>
              {created(o.createTime)}
            </Anchor>
          </Table.Td>
          {client && <Table.Td>{client(o)}</Table.Td>}
          <Table.Td>
            <Badge color={ORDER_STATE_COLOR[o.state]}>{ORDER_STATE_LABEL[o.state]}</Badge>
          </Table.Td>
          <Table.Td ta="right">
            <Money value={o.total} />
          </Table.Td>
        </Table.Tr>
      ))}
    </ListTable>
  );
}
