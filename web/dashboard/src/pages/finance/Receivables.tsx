/**
 * Receivables aging per currency (current, 1–30, 31–60, 61–90, over 90 days overdue), now or as of
 * any past instant. Charts plot integer minor units and label them with the currency's format.
 */
import { useState } from 'react';
import { Card, Group, SimpleGrid, Table, Text, Title } from '@mantine/core';
import { BarChart } from '@mantine/charts';
import { useQuery } from '@connectrpc/connect-query';
import { FinanceService } from '@sentra/shared/api';
import { formatMinor } from '@sentra/shared/money';
import { instantFromInput } from '@sentra/shared/format';
import { PageHeader, QueryView } from '@sentra/shared/ui';
import type { ReceivablesBucket } from '@sentra/shared/gen/sentra/finance/v1/finance_service_pb';
import { useScope } from '../../layout/scope';
import { useBrands } from '../../data';
import { AsOfBanner, AsOfInput } from '../AsOf';

const BUCKETS = [
  ['Current', 'currentMinor'],
  ['1–30 days', 'days130Minor'],
  ['31–60 days', 'days3160Minor'],
  ['61–90 days', 'days6190Minor'],
  ['Over 90 days', 'daysOver90Minor'],
] as const;

type Amounts = Record<(typeof BUCKETS)[number][1] | 'totalMinor', bigint>;

/** Sums the brands' rows of each currency. */
function byCurrency(buckets: ReceivablesBucket[]): Map<string, Amounts & { count: bigint }> {
  const out = new Map<string, Amounts & { count: bigint }>();
  for (const b of buckets) {
    const sum = out.get(b.currencyCode) ?? {
      currentMinor: 0n,
      days130Minor: 0n,
      days3160Minor: 0n,
      days6190Minor: 0n,
      daysOver90Minor: 0n,
      totalMinor: 0n,
      count: 0n,
    };
    for (const [, key] of BUCKETS) sum[key] += b[key];
    sum.totalMinor += b.totalMinor;
    sum.count += b.invoiceCount;
    out.set(b.currencyCode, sum);
  }
  return out;
}

export default function Receivables() {
  const scope = useScope();
  const { byId: brands } = useBrands();
  const [asOf, setAsOf] = useState('');
  const summary = useQuery(FinanceService.method.getReceivablesSummary, { brandId: scope.brandId ?? '', asOf: instantFromInput(asOf) });
  return (
    <>
      <PageHeader title="Receivables">What clients owe, by how long it is overdue.</PageHeader>
      <Group mb="md">
        <AsOfInput value={asOf} onChange={setAsOf} />
      </Group>
      <AsOfBanner value={asOf} />
      <QueryView query={summary} isEmpty={(d) => d.buckets.length === 0} empty="Nothing is owed: no open invoices.">
        {(data) => {
          const currencies = [...byCurrency(data.buckets).entries()];
          return (
            <>
              <SimpleGrid cols={{ base: 1, md: 2 }} mb="md">
                {currencies.map(([currency, sum]) => (
                  <Card withBorder key={currency} data-testid={`aging-${currency}`}>
                    <Group justify="space-between" mb="sm">
                      <Title order={4}>{currency}</Title>
                      <Text fw={700} data-testid={`aging-total-${currency}`}>
                        {formatMinor(sum.totalMinor, currency)}
                      </Text>
                    </Group>
                    <BarChart
                      h={220}
                      data={BUCKETS.map(([label, key]) => ({ bucket: label, Owed: Number(sum[key]) }))}
                      dataKey="bucket"
                      series={[{ name: 'Owed', color: 'brand.6' }]}
                      valueFormatter={(v) => formatMinor(BigInt(Math.round(v)), currency)}
                      withYAxis={false}
                      tickLine="none"
                    />
                  </Card>
                ))}
              </SimpleGrid>
              <Card withBorder padding={0}>
                <Table.ScrollContainer minWidth={720}>
                  <Table data-testid="aging-table">
                    <Table.Thead>
                      <Table.Tr>
                        <Table.Th>Brand</Table.Th>
                        <Table.Th>Currency</Table.Th>
                        {BUCKETS.map(([label]) => (
                          <Table.Th key={label} ta="right">
                            {label}
                          </Table.Th>
                        ))}
                        <Table.Th ta="right">Total</Table.Th>
                        <Table.Th ta="right">Invoices</Table.Th>
                      </Table.Tr>
                    </Table.Thead>
                    <Table.Tbody>
                      {data.buckets.map((b) => (
                        <Table.Tr key={`${b.brandId}-${b.currencyCode}`}>
                          <Table.Td>{brands.get(b.brandId)?.name ?? '—'}</Table.Td>
                          <Table.Td>{b.currencyCode}</Table.Td>
                          {BUCKETS.map(([label, key]) => (
                            <Table.Td key={label} ta="right">
                              {formatMinor(b[key], b.currencyCode)}
                            </Table.Td>
                          ))}
                          <Table.Td ta="right" fw={700}>
                            {formatMinor(b.totalMinor, b.currencyCode)}
                          </Table.Td>
                          <Table.Td ta="right">{String(b.invoiceCount)}</Table.Td>
                        </Table.Tr>
                      ))}
                    </Table.Tbody>
                  </Table>
                </Table.ScrollContainer>
              </Card>
            </>
          );
        }}
      </QueryView>
    </>
  );
}
