/**
 * Home: the pipeline summary (count and value per stage, conversion, won and lost in the period,
 * per agent), now or as of any past instant.
 */
import { useState } from 'react';
import { Card, Group, SimpleGrid, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { BarChart } from '@mantine/charts';
import { useQuery } from '@connectrpc/connect-query';
import { Navigate } from 'react-router';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { SalesService } from '@sentra/shared/api';
import { P, canSomewhere } from '@sentra/shared/permissions';
import { STAGE_LABEL } from '@sentra/shared/labels';
import { formatMinor } from '@sentra/shared/money';
import { instantFromInput } from '@sentra/shared/format';
import { PageHeader, QueryView, usePrincipal } from '@sentra/shared/ui';
import type { GetPipelineSummaryResponse } from '@sentra/shared/gen/sentra/sales/v1/sales_service_pb';
import { useScope } from '../layout/scope';
import { useUsers } from '../data';
import { AsOfBanner, AsOfInput } from './AsOf';

function firstOfMonth(): string {
  const now = new Date();
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}-01`;
}

function Kpi({ label, value, testId }: { label: string; value: string; testId: string }) {
  return (
    <Card withBorder padding="md">
      <Text size="xs" c="dimmed" tt="uppercase" fw={700}>
        {label}
      </Text>
      <Text size="xl" fw={700} data-testid={testId}>
        {value}
      </Text>
    </Card>
  );
}

function values(money: { currencyCode: string; amountMinor: bigint }[]): string {
  return money.length === 0 ? '—' : money.map((m) => formatMinor(m.amountMinor, m.currencyCode)).join(' + ');
}

function Summary({ data }: { data: GetPipelineSummaryResponse }) {
  const users = useUsers();
  const chart = data.stages.map((s) => ({ stage: STAGE_LABEL[s.stage], Leads: Number(s.count) }));
  return (
    <Stack gap="lg">
      <SimpleGrid cols={{ base: 2, sm: 4 }}>
        <Kpi label="Created in period" value={String(data.created)} testId="kpi-created" />
        <Kpi label="Won in period" value={String(data.won)} testId="kpi-won" />
        <Kpi label="Lost in period" value={String(data.lost)} testId="kpi-lost" />
        <Kpi label="Conversion" value={`${(data.conversionRate * 100).toFixed(1)} %`} testId="kpi-conversion" />
      </SimpleGrid>
      <Card withBorder>
        <Title order={4} mb="sm">
          Leads per stage
        </Title>
        <BarChart
          h={240}
          data={chart}
          dataKey="stage"
          series={[{ name: 'Leads', color: 'brand.6' }]}
          tickLine="y"
          yAxisProps={{ allowDecimals: false }}
        />
      </Card>
      <Card withBorder>
        <Table.ScrollContainer minWidth={420}>
          <Table data-testid="stage-table" striped>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Stage</Table.Th>
                <Table.Th ta="right">Leads</Table.Th>
                <Table.Th ta="right">Value</Table.Th>
                <Table.Th ta="right">Avg. days</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.stages.map((s) => (
                <Table.Tr key={s.stage} data-stage={STAGE_LABEL[s.stage]}>
                  <Table.Td>{STAGE_LABEL[s.stage]}</Table.Td>
                  <Table.Td ta="right">{String(s.count)}</Table.Td>
                  <Table.Td ta="right">{values(s.value)}</Table.Td>
                  <Table.Td ta="right">{s.averageDays.toFixed(1)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      </Card>
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <Card withBorder>
          <Title order={4} mb="sm">
            Per agent (in period)
          </Title>
          {data.byAgent.length === 0 ? (
            <Text c="dimmed" size="sm">
              No lead was won or lost in the period.
            </Text>
          ) : (
            <Table data-testid="agent-table">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Agent</Table.Th>
                  <Table.Th ta="right">Won</Table.Th>
                  <Table.Th ta="right">Lost</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {data.byAgent.map((a) => (
                  <Table.Tr key={a.key}>
                    <Table.Td>{a.key ? users.name(a.key) : 'Unassigned'}</Table.Td>
                    <Table.Td ta="right">{String(a.won)}</Table.Td>
                    <Table.Td ta="right">{String(a.lost)}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </Card>
        <Card withBorder>
          <Title order={4} mb="sm">
            Lost, by reason (in period)
          </Title>
          {data.lostByReason.length === 0 ? (
            <Text c="dimmed" size="sm">
              No lead was lost in the period.
            </Text>
          ) : (
            <Table>
              <Table.Tbody>
                {data.lostByReason.map((r) => (
                  <Table.Tr key={r.key}>
                    <Table.Td>{r.key || 'No reason given'}</Table.Td>
                    <Table.Td ta="right">{String(r.lost)}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </Card>
      </SimpleGrid>
    </Stack>
  );
}

export default function Home() {
  const principal = usePrincipal();
  const scope = useScope();
  const [period, setPeriod] = useState(firstOfMonth);
  const [asOf, setAsOf] = useState('');
  const periodStart = period ? timestampFromDate(new Date(`${period}T00:00:00`)) : undefined;
  const summary = useQuery(
    SalesService.method.getPipelineSummary,
    { brandId: scope.brandId ?? '', periodStart, asOf: instantFromInput(asOf) },
    { enabled: canSomewhere(principal, P.pipelineRead) },
  );
  if (!canSomewhere(principal, P.pipelineRead)) {
    return <Navigate to={canSomewhere(principal, P.invoiceRead) ? '/finance/invoices' : '/clients'} replace />;
  }
  return (
    <>
      <PageHeader title="Pipeline overview">Leads per stage now, or as they stood at any moment.</PageHeader>
      <Group mb="md" align="flex-end" gap="md">
        <TextInput
          type="date"
          label="Period from"
          description="For created, won and lost"
          value={period}
          onChange={(e) => setPeriod(e.currentTarget.value)}
          max="9999-12-31"
        />
        <AsOfInput value={asOf} onChange={setAsOf} />
      </Group>
      <AsOfBanner value={asOf} />
      <QueryView query={summary}>{(data) => <Summary data={data} />}</QueryView>
    </>
  );
}
