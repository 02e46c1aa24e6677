/** Orders of the brand(s), by state, paged. New orders start from a client's page. */
import { useState } from 'react';
import { Card, Group, MultiSelect } from '@mantine/core';
import { useQuery } from '@connectrpc/connect-query';
import { SalesService } from '@sentra/shared/api';
import { OrderState } from '@sentra/shared/gen/sentra/sales/v1/resources_pb';
import { ORDER_STATE_LABEL } from '@sentra/shared/labels';
import { OrdersTable, PageHeader, Pager, QueryView, usePaging } from '@sentra/shared/ui';
import { useScope } from '../layout/scope';
import { useClientNames } from './clientNames';

const STATES = [OrderState.DRAFT, OrderState.CONFIRMED, OrderState.FULFILLED, OrderState.CANCELLED];

export default function Orders() {
  const scope = useScope();
  const [states, setStates] = useState<string[]>([]);
  const paging = usePaging(`${scope.brandId}|${states.join()}`);
  const orders = useQuery(SalesService.method.listOrders, {
    brandId: scope.brandId ?? '',
    states: states.map(Number),
    pageSize: 25,
    pageToken: paging.token,
  });
  const names = useClientNames(scope.brandId);
  return (
    <>
      <PageHeader title="Orders">Create an order from a client's page.</PageHeader>
      <Group mb="md">
        <MultiSelect
          label="State"
          placeholder="Any"
          w={320}
          data={STATES.map((s) => ({ value: String(s), label: ORDER_STATE_LABEL[s] }))}
          value={states}
          onChange={setStates}
          clearable
        />
      </Group>
      <Card withBorder padding={0}>
        <QueryView query={orders} isEmpty={(d) => d.orders.length === 0} empty="No orders match.">
          {(data) => (
            <OrdersTable orders={data.orders} href={(o) => `/orders/${o.id}`} client={(o) => names(o.clientId)} testId="orders-table" />
          )}
        </QueryView>
      </Card>
      <Pager paging={paging} nextToken={orders.data?.nextPageToken} />
    </>
  );
}
