/**
 * One webhook endpoint: turn it on or off, rotate its secret (the old one keeps signing for a day),
 * delete it, and read its delivery log (every attempt with the receiver's answer), replaying one
 * delivery or everything since a time.
 */
import { useState } from 'react';
import { Anchor, Badge, Button, Card, Code, Group, Modal, Select, Stack, Table, Text, Title } from '@mantine/core';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Link, useNavigate, useParams } from 'react-router';
import { WebhookService } from '@sentra/shared/api';
import { WebhookDeliveryStatus, type WebhookDelivery, type WebhookEndpoint } from '@sentra/shared/gen/sentra/comm/v1/webhook_service_pb';
import { P, can } from '@sentra/shared/permissions';
import { ConfirmDialog, ErrorAlert, ListTable, PageHeader, Pager, QueryView, When, usePaging, usePrincipal } from '@sentra/shared/ui';
import { useInvalidate } from '../../data';
import { EndpointState, SecretOnce } from '../../comm/webhooks';

const STATUS: Record<WebhookDeliveryStatus, { label: string; color: string }> = {
  [WebhookDeliveryStatus.UNSPECIFIED]: { label: '—', color: 'gray' },
  [WebhookDeliveryStatus.PENDING]: { label: 'Retrying', color: 'yellow' },
  [WebhookDeliveryStatus.SUCCEEDED]: { label: 'Delivered', color: 'green' },
  [WebhookDeliveryStatus.FAILED]: { label: 'Failed', color: 'red' },
};

function Actions({ endpoint }: { endpoint: WebhookEndpoint }) {
  const invalidate = useInvalidate();
  const navigate = useNavigate();
  const update = useMutation(WebhookService.method.updateWebhookEndpoint);
  const rotate = useMutation(WebhookService.method.rotateWebhookSecret);
  const remove = useMutation(WebhookService.method.deleteWebhookEndpoint);
  const [secret, setSecret] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<'rotate' | 'delete' | null>(null);
  const toggle = () =>
    update
      .mutateAsync({ endpoint: { ...endpoint, enabled: !endpoint.enabled }, updateMask: { paths: ['enabled'] } })
      .then(() => invalidate(WebhookService))
      .catch(() => undefined);
  return (
    <>
      <Button variant="default" loading={update.isPending} onClick={toggle}>
        {endpoint.enabled ? 'Disable' : 'Enable'}
      </Button>
      <Button variant="default" onClick={() => setConfirm('rotate')}>
        Rotate secret
      </Button>
      <Button color="red" variant="light" onClick={() => setConfirm('delete')}>
        Delete
      </Button>
      {update.error && <ErrorAlert error={update.error} />}
      <ConfirmDialog
        opened={confirm === 'rotate'}
        onClose={() => setConfirm(null)}
        title="Rotate the signing secret?"
        confirm="Rotate"
        onConfirm={() =>
          rotate.mutateAsync({ endpointId: endpoint.endpointId }).then((r) => {
            setSecret(r.secret);
            return invalidate(WebhookService);
          })
        }
      >
        Requests carry signatures with both the old and the new secret for 24 hours, so you can update your receiver meanwhile.
      </ConfirmDialog>
      <ConfirmDialog
        opened={confirm === 'delete'}
        onClose={() => setConfirm(null)}
        title="Delete this endpoint?"
        confirm="Delete"
        color="red"
        onConfirm={() =>
          remove.mutateAsync({ endpointId: endpoint.endpointId, etag: endpoint.etag }).then(async () => {
            await invalidate(WebhookService);
            await navigate('/admin/webhooks');
          })
        }
      >
        Its delivery log goes with it; events are no longer sent to {endpoint.url}.
      </ConfirmDialog>
      <Modal opened={secret !== null} onClose={() => setSecret(null)} title="New signing secret" size="lg">
        {secret && <SecretOnce secret={secret} onDone={() => setSecret(null)} />}
      </Modal>
    </>
  );
}

/** The body as sent, indented for reading (as is when it is not JSON). */
function pretty(payload: string): string {
  try {
    return JSON.stringify(JSON.parse(payload), null, 2);
  } catch {
    return payload;
  }
}

function Attempts({ delivery }: { delivery: WebhookDelivery }) {
  return (
    <Stack gap="xs" data-testid="delivery-attempts">
      {delivery.attempts.map((a) => (
        <Group key={a.attemptNumber} gap="sm" wrap="nowrap" align="flex-start">
          <Badge variant="light" color={a.responseStatus >= 200 && a.responseStatus < 300 ? 'green' : 'red'}>
            {a.responseStatus === 0 ? 'No answer' : `HTTP ${a.responseStatus}`}
          </Badge>
          <Text size="xs" c="dimmed" style={{ whiteSpace: 'nowrap' }}>
            #{a.attemptNumber} · <When value={a.attemptTime} /> · {a.durationMs} ms
          </Text>
          <Text size="xs" style={{ wordBreak: 'break-word' }}>
            {a.error || a.responseBody}
          </Text>
        </Group>
      ))}
      <Code block style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-all', maxHeight: 320, overflow: 'auto' }}>
        {pretty(delivery.payload)}
      </Code>
    </Stack>
  );
}

function DeliveryRow({ delivery, writable, onReplayed }: { delivery: WebhookDelivery; writable: boolean; onReplayed: () => void }) {
  const replay = useMutation(WebhookService.method.replayWebhookDeliveries);
  const [open, setOpen] = useState(false);
  const status = STATUS[delivery.status];
  return (
    <>
      <Table.Tr data-testid="delivery-row">
        <Table.Td>
          <Anchor component="button" type="button" onClick={() => setOpen(!open)} aria-expanded={open}>
            {delivery.eventType}
          </Anchor>
          <Text size="xs" c="dimmed" ff="monospace">
            {delivery.messageId}
          </Text>
        </Table.Td>
        <Table.Td>
          <Badge color={status.color} data-testid="delivery-status">
            {status.label}
          </Badge>
        </Table.Td>
        <Table.Td>{delivery.attempts.length}</Table.Td>
        <Table.Td>
          <When value={delivery.createTime} />
        </Table.Td>
        <Table.Td>
          {writable && (
            <Button
              size="xs"
              variant="default"
              loading={replay.isPending}
              onClick={() =>
                replay
                  .mutateAsync({ endpointId: delivery.endpointId, target: { case: 'deliveryId', value: delivery.deliveryId } })
                  .then(onReplayed)
                  .catch(() => undefined)
              }
            >
              Replay
            </Button>
          )}
          {replay.error && <ErrorAlert error={replay.error} />}
        </Table.Td>
      </Table.Tr>
      {open && (
        <Table.Tr>
          <Table.Td colSpan={5}>
            <Attempts delivery={delivery} />
          </Table.Td>
        </Table.Tr>
      )}
    </>
  );
}

function ReplaySince({ endpointId, onReplayed }: { endpointId: string; onReplayed: () => void }) {
  const replay = useMutation(WebhookService.method.replayWebhookDeliveries);
  const [hours, setHours] = useState<string | null>('24');
  const [queued, setQueued] = useState<number | null>(null);
  return (
    <Group align="flex-end" gap="sm">
      <Select
        label="Replay every event of the last"
        data={[
          { value: '1', label: 'hour' },
          { value: '24', label: '24 hours' },
          { value: '168', label: '7 days' },
        ]}
        value={hours}
        onChange={setHours}
        allowDeselect={false}
        w={220}
      />
      <Button
        variant="default"
        loading={replay.isPending}
        onClick={() =>
          replay
            .mutateAsync({
              endpointId,
              target: { case: 'sinceTime', value: timestampFromDate(new Date(Date.now() - Number(hours ?? '24') * 3_600_000)) },
            })
            .then((r) => {
              setQueued(r.queued);
              onReplayed();
            })
            .catch(() => undefined)
        }
      >
        Replay
      </Button>
      {queued !== null && (
        <Text size="sm" c="dimmed" data-testid="replayed">
          {queued} {queued === 1 ? 'event' : 'events'} queued again.
        </Text>
      )}
      {replay.error && <ErrorAlert error={replay.error} />}
    </Group>
  );
}

function Deliveries({ endpoint, writable }: { endpoint: WebhookEndpoint; writable: boolean }) {
  const paging = usePaging('deliveries');
  const query = useQuery(
    WebhookService.method.listWebhookDeliveries,
    { endpointId: endpoint.endpointId, pageSize: 25, pageToken: paging.token },
    { refetchInterval: 2_000 },
  );
  const refresh = () => void query.refetch();
  return (
    <Card withBorder>
      <Stack>
        <Title order={4}>Deliveries</Title>
        {writable && endpoint.enabled && <ReplaySince endpointId={endpoint.endpointId} onReplayed={refresh} />}
        <QueryView query={query} isEmpty={(d) => d.deliveries.length === 0} empty="Nothing sent yet.">
          {(data) => (
            <ListTable minWidth={640} testId="deliveries-table" columns={['Event', 'Status', 'Attempts', 'When', '']}>
              {data.deliveries.map((d) => (
                <DeliveryRow key={d.deliveryId} delivery={d} writable={writable && endpoint.enabled} onReplayed={refresh} />
              ))}
            </ListTable>
          )}
        </QueryView>
        <Pager paging={paging} nextToken={query.data?.nextPageToken} />
      </Stack>
    </Card>
  );
}

export default function WebhookPage() {
  const { endpointId = '' } = useParams();
  const principal = usePrincipal();
  const query = useQuery(WebhookService.method.getWebhookEndpoint, { endpointId }, { refetchInterval: 5_000 });
  const writable = can(principal, P.webhookWrite);
  return (
    <QueryView query={query}>
      {({ endpoint }) =>
        endpoint && (
          <Stack>
            <PageHeader title={endpoint.url} actions={writable ? <Actions endpoint={endpoint} /> : undefined}>
              <Anchor component={Link} to="/admin/webhooks" size="sm">
                All webhooks
              </Anchor>
            </PageHeader>
            <Card withBorder>
              <Group gap="xl" align="flex-start">
                <EndpointState endpoint={endpoint} />
                <Stack gap={2}>
                  <Text size="xs" c="dimmed">
                    Events
                  </Text>
                  <Text size="sm">{endpoint.eventTypes.length === 0 ? 'Every event' : endpoint.eventTypes.join(', ')}</Text>
                </Stack>
                {endpoint.description && (
                  <Stack gap={2}>
                    <Text size="xs" c="dimmed">
                      Description
                    </Text>
                    <Text size="sm">{endpoint.description}</Text>
                  </Stack>
                )}
                {endpoint.previousSecretExpireTime && (
                  <Stack gap={2}>
                    <Text size="xs" c="dimmed">
                      Previous secret signs until
                    </Text>
                    <Text size="sm">
                      <When value={endpoint.previousSecretExpireTime} />
                    </Text>
                  </Stack>
                )}
              </Group>
            </Card>
            <Deliveries endpoint={endpoint} writable={writable} />
          </Stack>
        )
      }
    </QueryView>
  );
}
