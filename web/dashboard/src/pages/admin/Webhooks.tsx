/**
 * The organization's webhook endpoints: add one (its signing secret is shown once), see which are
 * enabled, failing or disabled by the server, and open one for its delivery log.
 */
import { useState } from 'react';
import { Anchor, Button, Card, Group, Modal, Stack, Table, Text, TextInput } from '@mantine/core';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { Link } from 'react-router';
import { WebhookService } from '@sentra/shared/api';
import { fieldError, toProblem, type Problem } from '@sentra/shared/errors';
import { P, can } from '@sentra/shared/permissions';
import { ErrorAlert, ListTable, PageHeader, QueryView, When, usePrincipal } from '@sentra/shared/ui';
import { useInvalidate } from '../../data';
import { EndpointState, SecretOnce, parseEventTypes } from '../../comm/webhooks';

function NewEndpoint({ onClose }: { onClose: () => void }) {
  const invalidate = useInvalidate();
  const create = useMutation(WebhookService.method.createWebhookEndpoint);
  const [requestId] = useState(() => crypto.randomUUID());
  const [f, setF] = useState({ url: '', eventTypes: '', description: '' });
  const [problem, setProblem] = useState<Problem | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  if (secret) return <SecretOnce secret={secret} onDone={onClose} />;
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        setProblem(null);
        create
          .mutateAsync({
            requestId,
            endpoint: { url: f.url.trim(), description: f.description.trim(), eventTypes: parseEventTypes(f.eventTypes), enabled: true },
          })
          .then((r) => {
            setSecret(r.secret);
            return invalidate(WebhookService);
          })
          .catch((error: unknown) => setProblem(toProblem(error)));
      }}
    >
      <Stack>
        <TextInput
          label="URL"
          required
          placeholder="https://crm.agency.example/hooks/sentra"
          value={f.url}
          onChange={(e) => setF({ ...f, url: e.currentTarget.value })}
          error={fieldError(problem, 'url')}
        />
        <TextInput
          label="Events"
          description="Event types or prefixes, separated by commas (sales.lead.*, finance.invoice.overdue). Leave empty for every event."
          value={f.eventTypes}
          onChange={(e) => setF({ ...f, eventTypes: e.currentTarget.value })}
          error={fieldError(problem, 'event_types')}
        />
        <TextInput
          label="Description"
          value={f.description}
          onChange={(e) => setF({ ...f, description: e.currentTarget.value })}
          error={fieldError(problem, 'description')}
        />
        {problem && Object.keys(problem.fields).length === 0 && <ErrorAlert error={problem} />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button type="submit" loading={create.isPending}>
            Add endpoint
          </Button>
        </Group>
      </Stack>
    </form>
  );
}

export default function Webhooks() {
  const principal = usePrincipal();
  const endpoints = useQuery(WebhookService.method.listWebhookEndpoints, { pageSize: 100 });
  const [adding, setAdding] = useState(false);
  const writable = can(principal, P.webhookWrite);
  return (
    <>
      <PageHeader title="Webhooks" actions={writable ? <Button onClick={() => setAdding(true)}>Add endpoint</Button> : undefined}>
        Your other systems hear of leads, orders and invoices as they happen: every event is POSTed, signed, and retried for a day
        when the receiver fails.
      </PageHeader>
      <Card withBorder padding={0}>
        <QueryView query={endpoints} isEmpty={(d) => d.endpoints.length === 0} empty="No endpoint yet.">
          {(data) => (
            <ListTable minWidth={640} testId="webhooks-table" columns={['URL', 'Events', 'State', 'Added']}>
              {data.endpoints.map((e) => (
                <Table.Tr key={e.endpointId} data-testid="webhook-row">
                  <Table.Td>
                    <Anchor component={Link} to={`/admin/webhooks/${e.endpointId}`}>
                      {e.url}
                    </Anchor>
                    {e.description && (
                      <Text size="xs" c="dimmed">
                        {e.description}
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td>{e.eventTypes.length === 0 ? 'Every event' : e.eventTypes.join(', ')}</Table.Td>
                  <Table.Td>
                    <EndpointState endpoint={e} />
                  </Table.Td>
                  <Table.Td>
                    <When value={e.createTime} />
                  </Table.Td>
                </Table.Tr>
              ))}
            </ListTable>
          )}
        </QueryView>
      </Card>
      <Modal opened={adding} onClose={() => setAdding(false)} title="Add a webhook endpoint" size="lg">
        {adding && <NewEndpoint onClose={() => setAdding(false)} />}
      </Modal>
    </>
  );
}
