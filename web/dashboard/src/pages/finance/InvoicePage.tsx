/**
 * One invoice: lines and totals, payments and credit notes, and the finance actions (issue, record
 * a payment, credit note, void) for those whose role allows them.
 */
import { useState } from 'react';
import { Anchor, Badge, Button, Card, Grid, Group, Modal, Select, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { Link, useParams } from 'react-router';
import { FinanceService, SalesService } from '@sentra/shared/api';
import { InvoiceStatus, PaymentMethod, type Invoice } from '@sentra/shared/gen/sentra/finance/v1/resources_pb';
import { INVOICE_STATUS_COLOR, INVOICE_STATUS_LABEL, PAYMENT_METHOD_LABEL } from '@sentra/shared/labels';
import { dateFromInput, dateToInput, today } from '@sentra/shared/format';
import { parseMinor } from '@sentra/shared/money';
import { fieldError, toProblem, type Problem } from '@sentra/shared/errors';
import { P, can } from '@sentra/shared/permissions';
import {
  AmountsTable,
  Day,
  ErrorAlert,
  LineItemsTable,
  Money,
  PageHeader,
  PromptDialog,
  QueryView,
  When,
  invoiceAmounts,
  usePrincipal,
} from '@sentra/shared/ui';
import { useInvalidate } from '../../data';

function IssueDialog({ invoice, opened, onClose }: { invoice: Invoice; opened: boolean; onClose: () => void }) {
  const issue = useMutation(FinanceService.method.issueInvoice);
  const invalidate = useInvalidate();
  const [date, setDate] = useState(dateToInput(today()));
  return (
    <Modal opened={opened} onClose={onClose} title="Issue invoice">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          issue
            .mutateAsync({ invoiceId: invoice.id, issueDate: dateFromInput(date), etag: invoice.etag })
            .then(() => invalidate(FinanceService))
            .then(onClose)
            .catch(() => undefined);
        }}
      >
        <Stack>
          <Text size="sm">The invoice gets the next number of its brand and can no longer change.</Text>
          <TextInput type="date" label="Issue date" required value={date} onChange={(e) => setDate(e.currentTarget.value)} max="9999-12-31" />
          {issue.error && <ErrorAlert error={issue.error} />}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={issue.isPending}>
              Issue
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

function MoneyDialog({
  invoice,
  opened,
  onClose,
  kind,
}: {
  invoice: Invoice;
  opened: boolean;
  onClose: () => void;
  kind: 'payment' | 'credit';
}) {
  const invalidate = useInvalidate();
  const pay = useMutation(FinanceService.method.recordPayment);
  const credit = useMutation(FinanceService.method.issueCreditNote);
  const [amount, setAmount] = useState('');
  const [method, setMethod] = useState(String(PaymentMethod.BANK_TRANSFER));
  const [reference, setReference] = useState('');
  const [paidOn, setPaidOn] = useState(dateToInput(today()));
  const [reason, setReason] = useState('');
  const [requestId] = useState(() => crypto.randomUUID());
  const [problem, setProblem] = useState<Problem | null>(null);
  const [amountError, setAmountError] = useState<string | null>(null);
  const currency = invoice.currencyCode;
  const title = kind === 'payment' ? 'Record a payment' : 'Issue a credit note';
  return (
    <Modal opened={opened} onClose={onClose} title={title}>
      <form
        aria-label={title}
        onSubmit={(e) => {
          e.preventDefault();
          setProblem(null);
          const minor = parseMinor(amount, currency);
          if (minor === null || minor <= 0n) return setAmountError(`Enter a positive amount in ${currency}, such as 100.00`);
          setAmountError(null);
          const money = { currencyCode: currency, amountMinor: minor };
          const call =
            kind === 'payment'
              ? pay.mutateAsync({
                  invoiceId: invoice.id,
                  amount: money,
                  method: Number(method) as PaymentMethod,
                  reference: reference.trim(),
                  paidOn: dateFromInput(paidOn),
                  requestId,
                })
              : credit.mutateAsync({ invoiceId: invoice.id, amount: money, reason: reason.trim(), requestId });
          call
            .then(() => invalidate(FinanceService))
            .then(onClose)
            .catch((error: unknown) => setProblem(toProblem(error)));
        }}
      >
        <Stack>
          <Text size="sm">
            Balance due: <Money value={invoice.balance} />
          </Text>
          <TextInput
            label={`Amount (${currency})`}
            inputMode="decimal"
            required
            data-autofocus
            value={amount}
            onChange={(e) => setAmount(e.currentTarget.value)}
            error={amountError ?? fieldError(problem, 'amount')}
          />
          {kind === 'payment' ? (
            <>
              <Select
                label="Method"
                data={[PaymentMethod.BANK_TRANSFER, PaymentMethod.CARD, PaymentMethod.CASH, PaymentMethod.OTHER].map((m) => ({
                  value: String(m),
                  label: PAYMENT_METHOD_LABEL[m],
                }))}
                value={method}
                onChange={(v) => setMethod(v ?? String(PaymentMethod.BANK_TRANSFER))}
                allowDeselect={false}
              />
              <TextInput label="Reference" value={reference} onChange={(e) => setReference(e.currentTarget.value)} error={fieldError(problem, 'reference')} />
              <TextInput type="date" label="Paid on" value={paidOn} onChange={(e) => setPaidOn(e.currentTarget.value)} error={fieldError(problem, 'paid_on')} max="9999-12-31" />
            </>
          ) : (
            <TextInput label="Reason" required value={reason} onChange={(e) => setReason(e.currentTarget.value)} error={fieldError(problem, 'reason')} />
          )}
          {problem && Object.keys(problem.fields).length === 0 && <ErrorAlert error={problem} />}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={pay.isPending || credit.isPending}>
              {kind === 'payment' ? 'Record payment' : 'Issue credit note'}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

function InvoiceLines({ invoice }: { invoice: Invoice }) {
  return (
    <Stack>
      <LineItemsTable lines={invoice.lines} testId="invoice-lines" />
      <Group justify="flex-end">
        <AmountsTable rows={invoiceAmounts(invoice)} width={320} testId="invoice-amounts" />
      </Group>
    </Stack>
  );
}

export default function InvoicePage() {
  const { invoiceId = '' } = useParams();
  const principal = usePrincipal();
  const invalidate = useInvalidate();
  const query = useQuery(FinanceService.method.getInvoice, { invoiceId });
  const client = useQuery(SalesService.method.getClient, { clientId: query.data?.invoice?.clientId ?? '' }, { enabled: !!query.data?.invoice && can(principal, P.clientRead, query.data.invoice.brandId) });
  const voidInvoice = useMutation(FinanceService.method.voidInvoice);
  const [dialog, setDialog] = useState<'issue' | 'payment' | 'credit' | 'void' | null>(null);
  return (
    <QueryView query={query}>
      {({ invoice }) => {
        if (!invoice) return null;
        const write = can(principal, P.invoiceWrite, invoice.brandId);
        const payable = [InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.OVERDUE].includes(invoice.status);
        const c = client.data?.client;
        return (
          <>
            <PageHeader
              title={
                <Group gap="sm">
                  {invoice.number || 'Draft invoice'}
                  <Badge color={INVOICE_STATUS_COLOR[invoice.status]} data-testid="invoice-status">
                    {INVOICE_STATUS_LABEL[invoice.status]}
                  </Badge>
                </Group>
              }
              actions={
                <>
                  {write && invoice.status === InvoiceStatus.DRAFT && <Button onClick={() => setDialog('issue')}>Issue</Button>}
                  {can(principal, P.paymentWrite, invoice.brandId) && payable && (
                    <Button onClick={() => setDialog('payment')}>Record payment</Button>
                  )}
                  {write && payable && (
                    <Button variant="default" onClick={() => setDialog('credit')}>
                      Credit note
                    </Button>
                  )}
                  {invoice.status !== InvoiceStatus.DRAFT && (
                    <Button component={Link} to={`/finance/invoices/${invoice.id}/print`} variant="default">
                      Print view
                    </Button>
                  )}
                  {write && (invoice.status === InvoiceStatus.DRAFT || payable) && (
                    <Button color="red" variant="light" onClick={() => setDialog('void')}>
                      Void
                    </Button>
                  )}
                </>
              }
            >
              {c && (
                <Anchor component={Link} to={`/clients/${c.id}`}>
                  {c.company || c.contactName}
                </Anchor>
              )}
              {invoice.orderId && (
                <>
                  {' · '}
                  <Anchor component={Link} to={`/orders/${invoice.orderId}`}>
                    from an order
                  </Anchor>
                </>
              )}
              {invoice.voidReason && ` · void: ${invoice.voidReason}`}
            </PageHeader>
            <Grid>
              <Grid.Col span={{ base: 12, md: 8 }}>
                <Card withBorder>
                  <InvoiceLines invoice={invoice} />
                </Card>
              </Grid.Col>
              <Grid.Col span={{ base: 12, md: 4 }}>
                <Stack>
                  <Card withBorder>
                    <Table>
                      <Table.Tbody>
                        <Table.Tr>
                          <Table.Td>Issued</Table.Td>
                          <Table.Td ta="right">
                            <Day value={invoice.issueDate} />
                          </Table.Td>
                        </Table.Tr>
                        <Table.Tr>
                          <Table.Td>Due</Table.Td>
                          <Table.Td ta="right">
                            <Day value={invoice.dueDate} />
                          </Table.Td>
                        </Table.Tr>
                        <Table.Tr>
                          <Table.Td>Terms</Table.Td>
                          <Table.Td ta="right">{invoice.paymentTermsDays} days</Table.Td>
                        </Table.Tr>
                      </Table.Tbody>
                    </Table>
                  </Card>
                  <Card withBorder>
                    <Title order={5} mb="xs">
                      Payments
                    </Title>
                    {invoice.payments.length === 0 ? (
                      <Text size="sm" c="dimmed">
                        None yet.
                      </Text>
                    ) : (
                      <Table data-testid="payments">
                        <Table.Tbody>
                          {invoice.payments.map((p) => (
                            <Table.Tr key={p.id}>
                              <Table.Td>
                                <Day value={p.paidOn} />
                              </Table.Td>
                              <Table.Td>{PAYMENT_METHOD_LABEL[p.method]}</Table.Td>
                              <Table.Td ta="right">
                                <Money value={p.amount} />
                              </Table.Td>
                            </Table.Tr>
                          ))}
                        </Table.Tbody>
                      </Table>
                    )}
                  </Card>
                  {invoice.creditNotes.length > 0 && (
                    <Card withBorder>
                      <Title order={5} mb="xs">
                        Credit notes
                      </Title>
                      <Table>
                        <Table.Tbody>
                          {invoice.creditNotes.map((n) => (
                            <Table.Tr key={n.id}>
                              <Table.Td>{n.number}</Table.Td>
                              <Table.Td>{n.reason}</Table.Td>
                              <Table.Td ta="right">
                                <Money value={n.amount} />
                              </Table.Td>
                            </Table.Tr>
                          ))}
                        </Table.Tbody>
                      </Table>
                    </Card>
                  )}
                  <Text size="xs" c="dimmed">
                    Last change <When value={invoice.updateTime} />
                  </Text>
                </Stack>
              </Grid.Col>
            </Grid>
            {/* Mounted per opening: each gets fresh fields and its own request id. */}
            {dialog === 'issue' && <IssueDialog invoice={invoice} opened onClose={() => setDialog(null)} />}
            {dialog === 'payment' && <MoneyDialog invoice={invoice} kind="payment" opened onClose={() => setDialog(null)} />}
            {dialog === 'credit' && <MoneyDialog invoice={invoice} kind="credit" opened onClose={() => setDialog(null)} />}
            <PromptDialog
              opened={dialog === 'void'}
              onClose={() => setDialog(null)}
              title="Void this invoice"
              label="Reason"
              confirm="Void invoice"
              color="red"
              onSubmit={async (reason) => {
                await voidInvoice.mutateAsync({ invoiceId: invoice.id, reason, etag: invoice.etag });
                await invalidate(FinanceService);
              }}
            />
          </>
        );
      }}
    </QueryView>
  );
}
