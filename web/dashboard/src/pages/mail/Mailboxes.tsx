/**
 * The person's connected mailboxes (Gmail) with their sync status, connecting one (the
 * provider's consent page, then back to `/mailboxes/callback`), and the sender addresses
 * (aliases) of the brands they manage.
 */
import { Badge, Button, Card, Group, Select, Stack, Switch, Table, Text, TextInput, Title } from '@mantine/core';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { useState } from 'react';
import { CommService } from '@sentra/shared/api';
import { AliasStatus, type Mailbox } from '@sentra/shared/gen/sentra/comm/v1/resources_pb';
import { SYNC_STAGE_COLOR, SYNC_STAGE_LABEL } from '@sentra/shared/labels';
import { P, can } from '@sentra/shared/permissions';
import { EmptyState, ErrorAlert, PageHeader, QueryView, When, usePrincipal } from '@sentra/shared/ui';
import { useBrands } from '../../data';
import { useScope } from '../../layout/scope';

function ConnectButton({ label = 'Connect Gmail' }: { label?: string }) {
  const start = useMutation(CommService.method.startMailboxConnection);
  return (
    <Stack gap="xs" align="flex-end">
      <Button
        loading={start.isPending}
        onClick={() =>
          start
            .mutateAsync({})
            .then(({ authorizationUrl }) => window.location.assign(authorizationUrl))
            .catch(() => undefined)
        }
      >
        {label}
      </Button>
      {start.error && <ErrorAlert error={start.error} />}
    </Stack>
  );
}

function MailboxRow({ mailbox, onSynced }: { mailbox: Mailbox; onSynced: () => void }) {
  const sync = useMutation(CommService.method.syncMailbox);
  return (
    <Table.Tr data-testid="mailbox-row">
      <Table.Td>{mailbox.emailAddress}</Table.Td>
      <Table.Td>
        <Badge color={SYNC_STAGE_COLOR[mailbox.stage]} data-testid="mailbox-stage">
          {SYNC_STAGE_LABEL[mailbox.stage]}
        </Badge>
        {mailbox.lastError && (
          <Text size="xs" c="red" mt={4}>
            {mailbox.lastError}
          </Text>
        )}
      </Table.Td>
      <Table.Td data-testid="mailbox-count">
        {mailbox.messageCount.toString()}
        {mailbox.pendingCount > 0n && (
          <Text span size="xs" c="dimmed">
            {' '}
            (+{mailbox.pendingCount.toString()} to import)
          </Text>
        )}
      </Table.Td>
      <Table.Td>{mailbox.lastSyncedTime ? <When value={mailbox.lastSyncedTime} /> : '—'}</Table.Td>
      <Table.Td>
        <Button
          size="xs"
          variant="default"
          loading={sync.isPending}
          onClick={() => sync.mutateAsync({ mailboxId: mailbox.mailboxId }).then(onSynced).catch(() => undefined)}
        >
          Sync now
        </Button>
        {sync.error && <ErrorAlert error={sync.error} />}
      </Table.Td>
    </Table.Tr>
  );
}

function Aliases({ brandId, mailboxes }: { brandId: string; mailboxes: Mailbox[] }) {
  const principal = usePrincipal();
  const query = useQuery(CommService.method.listEmailAliases, { brandId });
  const create = useMutation(CommService.method.createEmailAlias);
  const [address, setAddress] = useState('');
  const [name, setName] = useState('');
  const [mailboxId, setMailboxId] = useState<string | null>(null);
  const [isDefault, setDefault] = useState(false);
  const writable = can(principal, P.aliasWrite, brandId);
  return (
    <Stack gap="sm">
      <QueryView query={query} isEmpty={(d) => d.aliases.length === 0} empty="No sender addresses yet.">
        {(data) => (
          <Table>
            <Table.Tbody>
              {data.aliases.map((a) => (
                <Table.Tr key={a.aliasId} data-testid="alias-row">
                  <Table.Td>
                    {a.displayName} &lt;{a.emailAddress}&gt;
                  </Table.Td>
                  <Table.Td>
                    <Badge color={a.status === AliasStatus.VERIFIED ? 'green' : 'yellow'}>
                      {a.status === AliasStatus.VERIFIED ? 'Verified' : 'Not verified in Gmail'}
                    </Badge>
                  </Table.Td>
                  <Table.Td>{a.isDefault && <Badge variant="light">Default for automated mail</Badge>}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </QueryView>
      {writable && mailboxes.length > 0 && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            create
              .mutateAsync({ brandId, emailAddress: address.trim(), displayName: name.trim(), mailboxId: mailboxId ?? '', isDefault })
              .then(() => {
                setAddress('');
                setName('');
                return query.refetch();
              })
              .catch(() => undefined);
          }}
        >
          <Group align="flex-end" wrap="wrap">
            <TextInput label="Sender address" placeholder="hello@brand.example" value={address} onChange={(e) => setAddress(e.currentTarget.value)} />
            <TextInput label="Display name" value={name} onChange={(e) => setName(e.currentTarget.value)} />
            <Select
              label="Sent through"
              data={mailboxes.map((m) => ({ value: m.mailboxId, label: m.emailAddress }))}
              value={mailboxId}
              onChange={setMailboxId}
            />
            <Switch label="Default" checked={isDefault} onChange={(e) => setDefault(e.currentTarget.checked)} />
            <Button type="submit" loading={create.isPending} disabled={!address.trim() || !mailboxId}>
              Add sender
            </Button>
          </Group>
          {create.error && <ErrorAlert error={create.error} />}
        </form>
      )}
    </Stack>
  );
}

export default function Mailboxes() {
  const principal = usePrincipal();
  const { brandId } = useScope();
  const brands = useBrands();
  const query = useQuery(CommService.method.listMailboxes, {}, { refetchInterval: 3_000 });
  const aliasBrands = brands.brands.filter((b) => !b.archived && (brandId === null || b.id === brandId) && can(principal, P.aliasRead, b.id));
  return (
    <Stack>
      <PageHeader title="Mailboxes" actions={can(principal, P.mailboxWrite) ? <ConnectButton /> : undefined}>
        Your Gmail, kept in sync: conversations with leads and clients appear on their pages.
      </PageHeader>
      <Card withBorder>
        <QueryView
          query={query}
          isEmpty={(d) => d.mailboxes.length === 0}
          empty="No mailbox connected yet. Connect your Gmail to see your conversations on leads and clients."
        >
          {(data) => (
            <Table>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Address</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th>Messages</Table.Th>
                  <Table.Th>Last synced</Table.Th>
                  <Table.Th />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {data.mailboxes.map((m) => (
                  <MailboxRow key={m.mailboxId} mailbox={m} onSynced={() => void query.refetch()} />
                ))}
              </Table.Tbody>
            </Table>
          )}
        </QueryView>
      </Card>
      {aliasBrands.map((b) => (
        <Card withBorder key={b.id}>
          <Title order={4} mb="sm">
            Sender addresses of {b.name}
          </Title>
          <Aliases brandId={b.id} mailboxes={query.data?.mailboxes ?? []} />
        </Card>
      ))}
      {aliasBrands.length === 0 && brands.isSuccess && <EmptyState>No brand whose sender addresses you can see.</EmptyState>}
    </Stack>
  );
}
