/** One of the client's orders: its state and lines. */
import { Anchor, Badge, Card, Group, Stack, Title } from '@mantine/core';
import { useQuery } from '@connectrpc/connect-query';
import { Link, useParams } from 'react-router';
import { SalesService } from '@sentra/shared/api';
import { ORDER_STATE_COLOR, ORDER_STATE_LABEL } from '@sentra/shared/labels';
import { AmountsTable, LineItemsTable, QueryView, When } from '@sentra/shared/ui';

export function OrderView() {
  const { orderId = '' } = useParams();
  const query = useQuery(SalesService.method.getOrder, { orderId });
  return (
    <Stack>
      <Anchor component={Link} to="/">
        ← Your account
      </Anchor>
      <QueryView query={query}>
        {({ order }) =>
          order && (
            <Card withBorder>
              <Group justify="space-between" mb="md">
                <Title order={3}>
                  Order of <When value={order.createTime} />
                </Title>
                <Badge color={ORDER_STATE_COLOR[order.state]} size="lg">
                  {ORDER_STATE_LABEL[order.state]}
                </Badge>
              </Group>
              <LineItemsTable lines={order.lines} compact />
              <Group justify="flex-end" mt="sm">
                <AmountsTable rows={[['Total', order.total, true]]} width={260} />
              </Group>
            </Card>
          )
        }
      </QueryView>
    </Stack>
  );
}
