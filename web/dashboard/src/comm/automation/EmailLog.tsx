/** What the rules sent (with the server's answer when they failed), and who unsubscribed. */
import { Badge, Button, Card, Stack, Table, Text, Title } from '@mantine/core';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { AutomationService } from '@sentra/shared/api';
import { EmailDeliveryStatus } from '@sentra/shared/gen/sentra/comm/v1/automation_service_pb';
import { ErrorAlert, ListTable, Pager, QueryView, When, usePaging } from '@sentra/shared/ui';

const STATUS: Record<EmailDeliveryStatus, { label: string; color: string }> = {
  [EmailDeliveryStatus.UNSPECIFIED]: { label: '—', color: 'gray' },
  [EmailDeliveryStatus.QUEUED]: { label: 'Queued', color: 'blue' },
  [EmailDeliveryStatus.SENT]: { label: 'Sent', color: 'green' },
  [EmailDeliveryStatus.DEFERRED]: { label: 'Retrying', color: 'yellow' },
  [EmailDeliveryStatus.FAILED]: { label: 'Failed', color: 'red' },
  [EmailDeliveryStatus.SUPPRESSED]: { label: 'Unsubscribed', color: 'gray' },
};

export function EmailLog({ brandId }: { brandId: string }) {
  const paging = usePaging('emails');
  const query = useQuery(AutomationService.method.listAutomatedEmails, { brandId, pageSize: 25, pageToken: paging.token }, { refetchInterval: 5_000 });
  return (
    <Card withBorder padding={0}>
      <QueryView query={query} isEmpty={(d) => d.emails.length === 0} empty="Nothing sent yet.">
        {(data) => (
          <ListTable minWidth={640} testId="emails-table" columns={['To', 'Subject', 'Status', 'Queued']}>
            {data.emails.map((e) => (
              <Table.Tr key={e.emailId} data-testid="email-row">
                <Table.Td>{e.recipient || '—'}</Table.Td>
                <Table.Td>
                  {e.subject || <Text c="dimmed">(not rendered yet)</Text>}
                  {e.lastError && (
                    <Text size="xs" c="red">
                      {e.lastError}
                    </Text>
                  )}
                </Table.Td>
                <Table.Td>
                  <Badge color={STATUS[e.status].color} data-testid="email-status">
                    {STATUS[e.status].label}
                  </Badge>
                </Table.Td>
                <Table.Td>
                  <When value={e.createTime} />
                </Table.Td>
              </Table.Tr>
            ))}
          </ListTable>
        )}
      </QueryView>
      <Pager paging={paging} nextToken={query.data?.nextPageToken} />
    </Card>
  );
}

export function Suppressions({ brandId, writable }: { brandId: string; writable: boolean }) {
  const query = useQuery(AutomationService.method.listSuppressions, { brandId });
  const remove = useMutation(AutomationService.method.deleteSuppression);
  return (
    <Card withBorder>
      <Stack gap="sm">
        <Title order={5}>Unsubscribed addresses</Title>
        <QueryView query={query} isEmpty={(d) => d.suppressions.length === 0} empty="Nobody unsubscribed.">
          {(data) => (
            <ListTable minWidth={480} testId="suppressions-table" columns={['Address', 'Why', 'Since', '']}>
              {data.suppressions.map((s) => (
                <Table.Tr key={s.emailAddress}>
                  <Table.Td>{s.emailAddress}</Table.Td>
                  <Table.Td>{s.reason === 'unsubscribed' ? 'Unsubscribed by the recipient' : s.reason}</Table.Td>
                  <Table.Td>
                    <When value={s.createTime} />
                  </Table.Td>
                  <Table.Td>
                    {writable && (
                      <Button
                        size="xs"
                        variant="default"
                        onClick={() => remove.mutateAsync({ brandId, emailAddress: s.emailAddress }).then(() => query.refetch()).catch(() => undefined)}
                      >
                        Send again
                      </Button>
                    )}
                  </Table.Td>
                </Table.Tr>
              ))}
            </ListTable>
          )}
        </QueryView>
        {remove.error && <ErrorAlert error={remove.error} />}
      </Stack>
    </Card>
  );
}
