/** The client's overview: what they owe, their invoices (issued ones) and their orders. */
import { Card, SimpleGrid, Stack, Text, Title } from '@mantine/core';
import { useQuery } from '@connectrpc/connect-query';
import { FinanceService, SalesService } from '@sentra/shared/api';
import { formatMinor } from '@sentra/shared/money';
import { InvoicesTable, OrdersTable, Pager, QueryView, usePaging, usePrincipal, useSentra } from '@sentra/shared/ui';

function Balance() {
  const { brand } = useSentra();
  const principal = usePrincipal();
  const balance = useQuery(FinanceService.method.getClientBalance, { clientId: principal.clientId ?? '', brandId: brand?.brandId ?? '' });
  return (
    <QueryView query={balance} isEmpty={(d) => d.balances.length === 0} empty="Nothing has been invoiced yet.">
      {(data) => (
        <SimpleGrid cols={{ base: 1, sm: 3 }}>
          {data.balances.map((b) => (
            <Card withBorder key={b.currencyCode}>
              <Text size="xs" c="dimmed" tt="uppercase" fw={700}>
                Outstanding ({b.currencyCode})
              </Text>
              <Text size="xl" fw={700} data-testid={`portal-outstanding-${b.currencyCode}`}>
                {formatMinor(b.outstandingMinor, b.currencyCode)}
              </Text>
              <Text size="xs" c="dimmed">
                Invoiced {formatMinor(b.invoicedMinor, b.currencyCode)} · paid {formatMinor(b.paidMinor, b.currencyCode)}
              </Text>
            </Card>
          ))}
        </SimpleGrid>
      )}
    </QueryView>
  );
}

function Invoices() {
  const { brand } = useSentra();
  const paging = usePaging('invoices');
  const invoices = useQuery(FinanceService.method.listInvoices, { brandId: brand?.brandId ?? '', pageSize: 20, pageToken: paging.token });
  return (
    <Card withBorder padding={0}>
      <Title order={4} p="md" pb={0}>
        Invoices
      </Title>
      <QueryView query={invoices} isEmpty={(d) => d.invoices.length === 0} empty="No invoices yet.">
        {(data) => <InvoicesTable invoices={data.invoices} href={(i) => `/invoices/${i.id}`} testId="portal-invoices" />}
      </QueryView>
      <Pager paging={paging} nextToken={invoices.data?.nextPageToken} />
    </Card>
  );
}

function Orders() {
  const { brand } = useSentra();
  const paging = usePaging('orders');
  const orders = useQuery(SalesService.method.listOrders, { brandId: brand?.brandId ?? '', pageSize: 20, pageToken: paging.token });
  return (
    <Card withBorder padding={0}>
      <Title order={4} p="md" pb={0}>
        Orders
      </Title>
      <QueryView query={orders} isEmpty={(d) => d.orders.length === 0} empty="No orders yet.">
        {(data) => <OrdersTable orders={data.orders} href={(o) => `/orders/${o.id}`} testId="portal-orders" />}
      </QueryView>
      <Pager paging={paging} nextToken={orders.data?.nextPageToken} />
    </Card>
  );
}

export function Home() {
  return (
    <Stack>
      <Title order={2}>Your account</Title>
      <Balance />
      <Invoices />
      <Orders />
    </Stack>
  );
}
