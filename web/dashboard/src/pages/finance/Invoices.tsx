/** Invoices of the brand(s) with filters (status, issue and due dates), paged. */
import { useState } from 'react';
import { Card, Group, MultiSelect, TextInput } from '@mantine/core';
import { useQuery } from '@connectrpc/connect-query';
import { FinanceService } from '@sentra/shared/api';
import { InvoiceStatus } from '@sentra/shared/gen/sentra/finance/v1/resources_pb';
import { INVOICE_STATUS_LABEL } from '@sentra/shared/labels';
import { dateFromInput } from '@sentra/shared/format';
import { InvoicesTable, PageHeader, Pager, QueryView, usePaging } from '@sentra/shared/ui';
import { useScope } from '../../layout/scope';
import { useClientNames } from '../clientNames';

const STATUSES = [
  InvoiceStatus.DRAFT,
  InvoiceStatus.ISSUED,
  InvoiceStatus.PARTIALLY_PAID,
  InvoiceStatus.PAID,
  InvoiceStatus.OVERDUE,
  InvoiceStatus.VOID,
];

export default function Invoices() {
  const scope = useScope();
  const [statuses, setStatuses] = useState<string[]>([]);
  const [issuedFrom, setIssuedFrom] = useState('');
  const [issuedTo, setIssuedTo] = useState('');
  const [dueTo, setDueTo] = useState('');
  const paging = usePaging(`${scope.brandId}|${statuses.join()}|${issuedFrom}|${issuedTo}|${dueTo}`);
  const invoices = useQuery(FinanceService.method.listInvoices, {
    brandId: scope.brandId ?? '',
    statuses: statuses.map(Number),
    issuedFrom: dateFromInput(issuedFrom),
    issuedTo: dateFromInput(issuedTo),
    dueTo: dateFromInput(dueTo),
    pageSize: 25,
    pageToken: paging.token,
  });
  const names = useClientNames(scope.brandId);
  return (
    <>
      <PageHeader title="Invoices">Confirmed orders are drafted into invoices automatically.</PageHeader>
      <Group mb="md" align="flex-end" gap="sm">
        <MultiSelect
          label="Status"
          placeholder="Any"
          w={300}
          data={STATUSES.map((s) => ({ value: String(s), label: INVOICE_STATUS_LABEL[s] }))}
          value={statuses}
          onChange={setStatuses}
          clearable
        />
        <TextInput type="date" label="Issued from" value={issuedFrom} onChange={(e) => setIssuedFrom(e.currentTarget.value)} max="9999-12-31" />
        <TextInput type="date" label="Issued to" value={issuedTo} onChange={(e) => setIssuedTo(e.currentTarget.value)} max="9999-12-31" />
        <TextInput type="date" label="Due by" value={dueTo} onChange={(e) => setDueTo(e.currentTarget.value)} max="9999-12-31" />
      </Group>
      <Card withBorder padding={0}>
        <QueryView query={invoices} isEmpty={(d) => d.invoices.length === 0} empty="No invoices match.">
          {(data) => (
            <InvoicesTable
              invoices={data.invoices}
              href={(i) => `/finance/invoices/${i.id}`}
              client={(i) => names(i.clientId)}
              testId="invoices-table"
            />
          )}
        </QueryView>
      </Card>
      <Pager paging={paging} nextToken={invoices.data?.nextPageToken} />
    </>
  );
}
