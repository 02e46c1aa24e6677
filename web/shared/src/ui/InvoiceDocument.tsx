/**
 * An invoice as a document, in the brand's dress: what staff print and what a client sees in the
 * portal. The print stylesheet drops everything around `.print-sheet`.
 */
import { Box, Divider, Group, Image, Paper, Stack, Table, Text, Title } from '@mantine/core';
import type { Invoice } from '../gen/sentra/finance/v1/resources_pb';
import { INVOICE_STATUS_LABEL } from '../labels';
import { Day } from './components';
import { AmountsTable, LineItemsTable, invoiceAmounts } from './tables';

/** What the document shows of the brand (a `Brand` or the host's `BrandInfo`). */
export interface InvoiceBrand {
  displayName: string;
  logoUrl: string;
  primaryColor: string;
  supportEmail: string;
  domain: string;
}

/** What the document shows of the client. */
export interface InvoiceParty {
  name: string;
  company: string;
  email: string;
}

export function InvoiceDocument({ invoice, brand, client }: { invoice: Invoice; brand: InvoiceBrand | null; client: InvoiceParty | null }) {
  const accent = brand?.primaryColor || 'var(--mantine-primary-color-filled)';
  return (
    <Paper withBorder shadow="sm" p="xl" maw={820} mx="auto" className="print-sheet" data-testid="invoice-document">
      <Stack gap="lg">
        <Group justify="space-between" align="flex-start" wrap="nowrap">
          <Stack gap={4} style={{ flex: 1, minWidth: 0 }}>
            {brand?.logoUrl ? (
              <Image src={brand.logoUrl} alt={`${brand.displayName} logo`} h={40} w="auto" fit="contain" />
            ) : (
              <Title order={3} style={{ color: accent }}>
                {brand?.displayName ?? ''}
              </Title>
            )}
            {brand && (
              <Text size="sm" c="dimmed">
                {brand.displayName} · {brand.domain}
                {brand.supportEmail && ` · ${brand.supportEmail}`}
              </Text>
            )}
          </Stack>
          <Stack gap={2} align="flex-end" ta="right">
            <Title order={2}>Invoice</Title>
            <Text fw={700} data-testid="invoice-number">
              {invoice.number || 'Draft'}
            </Text>
            <Text size="sm">{INVOICE_STATUS_LABEL[invoice.status]}</Text>
          </Stack>
        </Group>
        <Box h={4} style={{ background: accent, borderRadius: 2 }} />
        <Group justify="space-between" align="flex-start">
          <Stack gap={2}>
            <Text size="xs" c="dimmed" tt="uppercase" fw={700}>
              Billed to
            </Text>
            {client ? (
              <>
                <Text fw={600}>{client.company || client.name}</Text>
                {client.company && <Text size="sm">{client.name}</Text>}
                {client.email && <Text size="sm">{client.email}</Text>}
              </>
            ) : (
              <Text size="sm">—</Text>
            )}
          </Stack>
          <Table w="auto" withRowBorders={false}>
            <Table.Tbody>
              <Table.Tr>
                <Table.Td c="dimmed">Issue date</Table.Td>
                <Table.Td>
                  <Day value={invoice.issueDate} />
                </Table.Td>
              </Table.Tr>
              <Table.Tr>
                <Table.Td c="dimmed">Due date</Table.Td>
                <Table.Td>
                  <Day value={invoice.dueDate} />
                </Table.Td>
              </Table.Tr>
              <Table.Tr>
                <Table.Td c="dimmed">Currency</Table.Td>
                <Table.Td>{invoice.currencyCode}</Table.Td>
              </Table.Tr>
            </Table.Tbody>
          </Table>
        </Group>
        <LineItemsTable lines={invoice.lines} />
        <Group justify="flex-end">
          <AmountsTable rows={invoiceAmounts(invoice)} width={300} />
        </Group>
        <Divider />
        <Text size="xs" c="dimmed">
          Please pay within {invoice.paymentTermsDays} days, quoting {invoice.number || 'the invoice number'}.
          {brand?.supportEmail && ` Questions: ${brand.supportEmail}.`}
        </Text>
      </Stack>
    </Paper>
  );
}
