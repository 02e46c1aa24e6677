/**
 * One order: its lines (editable while a draft), totals computed by the server, the state
 * actions (confirm, fulfil, cancel), and the invoice Finance drafts once it is confirmed.
 */
import { useState } from 'react';
import { Anchor, Badge, Button, Card, Grid, Group, Stack, Text, Title } from '@mantine/core';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { Link, useParams } from 'react-router';
import { FinanceService, SalesService } from '@sentra/shared/api';
import { OrderState, type Order } from '@sentra/shared/gen/sentra/sales/v1/resources_pb';
import { INVOICE_STATUS_COLOR, INVOICE_STATUS_LABEL, ORDER_STATE_COLOR, ORDER_STATE_LABEL } from '@sentra/shared/labels';
import { P, can } from '@sentra/shared/permissions';
import { AmountsTable, ErrorAlert, LineItemsTable, Money, PageHeader, PromptDialog, QueryView, When, usePrincipal } from '@sentra/shared/ui';
import { useInvalidate } from '../data';
import { OrderLinesEditor } from './OrderLines';

function Totals({ order }: { order: Order }) {
  return (
    <Card withBorder>
      <Title order={4} mb="sm">
        Totals
      </Title>
      <AmountsTable
        testId="order-totals"
        rows={[
          ['Subtotal', order.subtotal],
          ['Discount', order.discountTotal],
          ['Tax', order.taxTotal],
          ['Total', order.total, true],
        ]}
      />
    </Card>
  );
}

/** The invoice Finance drafted for this order (it arrives over the bus, within moments). */
function OrderInvoice({ order }: { order: Order }) {
  const principal = usePrincipal();
  const invoiced = order.state === OrderState.CONFIRMED || order.state === OrderState.FULFILLED;
  const readable = can(principal, P.invoiceRead, order.brandId);
  const invoices = useQuery(
    FinanceService.method.listInvoices,
    { orderId: order.id, brandId: order.brandId, pageSize: 5 },
    {
      enabled: invoiced && readable,
      refetchInterval: (q) => ((q.state.data?.invoices.length ?? 0) === 0 && q.state.dataUpdateCount < 60 ? 1000 : false),
    },
  );
  if (!invoiced || !readable) return null;
  const invoice = invoices.data?.invoices[0];
  return (
    <Card withBorder data-testid="order-invoice">
      <Title order={4} mb="sm">
        Invoice
      </Title>
      {invoice ? (
        <Group>
          <Anchor component={Link} to={`/finance/invoices/${invoice.id}`}>
            {invoice.number || 'Draft invoice'}
          </Anchor>
          <Badge color={INVOICE_STATUS_COLOR[invoice.status]}>{INVOICE_STATUS_LABEL[invoice.status]}</Badge>
          <Money value={invoice.total} />
        </Group>
      ) : invoices.error ? (
        <ErrorAlert error={invoices.error} />
      ) : (
        <Text size="sm" c="dimmed">
          Finance is drafting the invoice…
        </Text>
      )}
    </Card>
  );
}

export default function OrderPage() {
  const { orderId = '' } = useParams();
  const principal = usePrincipal();
  const invalidate = useInvalidate();
  const query = useQuery(SalesService.method.getOrder, { orderId });
  const client = useQuery(SalesService.method.getClient, { clientId: query.data?.order?.clientId ?? '' }, { enabled: !!query.data?.order });
  const update = useMutation(SalesService.method.updateOrderLines);
  const confirm = useMutation(SalesService.method.confirmOrder);
  const fulfil = useMutation(SalesService.method.fulfillOrder);
  const cancel = useMutation(SalesService.method.cancelOrder);
  const [cancelling, setCancelling] = useState(false);
  const refresh = () => invalidate(SalesService, FinanceService);
  const failure = update.error ?? confirm.error ?? fulfil.error;

  return (
    <QueryView query={query}>
      {({ order }) => {
        if (!order) return null;
        const writable = can(principal, P.orderWrite, order.brandId);
        const draft = order.state === OrderState.DRAFT;
        const c = client.data?.client;
        return (
          <>
            <PageHeader
              title={
                <Group gap="sm">
                  Order
                  <Badge color={ORDER_STATE_COLOR[order.state]} data-testid="order-state">
                    {ORDER_STATE_LABEL[order.state]}
                  </Badge>
                </Group>
              }
              actions={
                writable && (
                  <>
                    {draft && (
                      <Button
                        loading={confirm.isPending}
                        disabled={order.lines.length === 0}
                        onClick={() => confirm.mutateAsync({ orderId: order.id, etag: order.etag }).then(refresh).catch(() => undefined)}
                      >
                        Confirm order
                      </Button>
                    )}
                    {order.state === OrderState.CONFIRMED && (
                      <Button
                        loading={fulfil.isPending}
                        onClick={() => fulfil.mutateAsync({ orderId: order.id, etag: order.etag }).then(refresh).catch(() => undefined)}
                      >
                        Mark fulfilled
                      </Button>
                    )}
                    {(draft || order.state === OrderState.CONFIRMED) && (
                      <Button color="red" variant="light" onClick={() => setCancelling(true)}>
                        Cancel order
                      </Button>
                    )}
                  </>
                )
              }
            >
              {c ? (
                <Anchor component={Link} to={`/clients/${c.id}`}>
                  {c.company || c.contactName}
                </Anchor>
              ) : null}{' '}
              · created <When value={order.createTime} /> · {order.currencyCode}
              {order.cancelReason && ` · cancelled: ${order.cancelReason}`}
            </PageHeader>
            {failure && (
              <Stack mb="md">
                <ErrorAlert error={failure} />
              </Stack>
            )}
            <Grid>
              <Grid.Col span={{ base: 12, md: 8 }}>
                <Card withBorder>
                  <Title order={4} mb="sm">
                    Lines
                  </Title>
                  {draft && writable ? (
                    <OrderLinesEditor
                      order={order}
                      saving={update.isPending}
                      onSave={(lines) => update.mutateAsync({ orderId: order.id, lines, etag: order.etag }).then(refresh)}
                    />
                  ) : (
                    <LineItemsTable lines={order.lines} testId="order-lines" />
                  )}
                </Card>
              </Grid.Col>
              <Grid.Col span={{ base: 12, md: 4 }}>
                <Stack>
                  <Totals order={order} />
                  <OrderInvoice order={order} />
                </Stack>
              </Grid.Col>
            </Grid>
            <PromptDialog
              opened={cancelling}
              onClose={() => setCancelling(false)}
              title="Cancel this order"
              label="Reason"
              confirm="Cancel order"
              color="red"
              onSubmit={async (reason) => {
                await cancel.mutateAsync({ orderId: order.id, reason, etag: order.etag });
                await refresh();
              }}
            />
          </>
        );
      }}
    </QueryView>
  );
}
