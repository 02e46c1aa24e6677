/**
 * One client: contact data (editable), its orders (and a new one), its balance and invoices, and
 * a login to the brand's client portal.
 */
import { useState } from 'react';
import {
  Anchor,
  Badge,
  Button,
  Card,
  Grid,
  Group,
  Modal,
  PasswordInput,
  SimpleGrid,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { Link, useNavigate, useParams } from 'react-router';
import { FinanceService, SalesService, TenancyService } from '@sentra/shared/api';
import type { Client } from '@sentra/shared/gen/sentra/sales/v1/resources_pb';
import { formatMinor } from '@sentra/shared/money';
import { fieldError, toProblem, type Problem } from '@sentra/shared/errors';
import { P, can } from '@sentra/shared/permissions';
import {
  ConfirmDialog,
  ErrorAlert,
  InvoicesTable,
  OrdersTable,
  PageHeader,
  Pager,
  QueryView,
  When,
  usePaging,
  usePrincipal,
} from '@sentra/shared/ui';
import { useBrands, useInvalidate } from '../data';
import { Conversations } from '../comm/Conversations';

function EditClient({ client, opened, onClose }: { client: Client; opened: boolean; onClose: () => void }) {
  const invalidate = useInvalidate();
  const update = useMutation(SalesService.method.updateClient);
  const [f, setF] = useState({ contactName: client.contactName, email: client.email, phone: client.phone, company: client.company });
  const [problem, setProblem] = useState<Problem | null>(null);
  const fields = [
    ['contactName', 'contact_name', 'Contact name'],
    ['company', 'company', 'Company'],
    ['email', 'email', 'Email'],
    ['phone', 'phone', 'Phone'],
  ] as const;
  return (
    <Modal opened={opened} onClose={onClose} title="Edit client">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const paths = fields.filter(([key]) => f[key] !== client[key]).map(([, path]) => path);
          if (paths.length === 0) return onClose();
          update
            .mutateAsync({ client: { ...f, id: client.id, etag: client.etag }, updateMask: { paths: [...paths] } })
            .then(() => {
              void invalidate(SalesService);
              onClose();
            })
            .catch((error: unknown) => setProblem(toProblem(error)));
        }}
      >
        <Stack>
          {fields.map(([key, path, label]) => (
            <TextInput
              key={key}
              label={label}
              value={f[key]}
              required={key === 'contactName'}
              onChange={(e) => {
                const value = e.currentTarget.value;
                setF((old) => ({ ...old, [key]: value }));
              }}
              error={fieldError(problem, `client.${path}`)}
            />
          ))}
          {problem && Object.keys(problem.fields).length === 0 && <ErrorAlert error={problem} />}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={update.isPending}>
              Save
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

function PortalAccess({ client }: { client: Client }) {
  const [opened, setOpened] = useState(false);
  const [f, setF] = useState({ email: client.email, displayName: client.contactName, password: '' });
  const [requestId] = useState(() => crypto.randomUUID());
  const [problem, setProblem] = useState<Problem | null>(null);
  const create = useMutation(TenancyService.method.createPortalUser);
  const { byId } = useBrands();
  const domain = byId.get(client.brandId)?.domain;
  return (
    <>
      <Button variant="default" onClick={() => setOpened(true)}>
        Portal login
      </Button>
      <Modal opened={opened} onClose={() => setOpened(false)} title="Give the client a portal login">
        <form
          onSubmit={(e) => {
            e.preventDefault();
            setProblem(null);
            create
              .mutateAsync({ brandId: client.brandId, clientId: client.id, ...f, requestId })
              .then(() => {
                notifications.show({ color: 'green', message: `${f.email} can now sign in${domain ? ` at ${domain}` : ''}.` });
                setOpened(false);
              })
              .catch((error: unknown) => setProblem(toProblem(error)));
          }}
        >
          <Stack>
            <Text size="sm" c="dimmed">
              The client signs in on the brand's domain{domain ? ` (${domain})` : ''} and sees only their own orders and invoices.
            </Text>
            <TextInput label="Email" required value={f.email} onChange={(e) => setF({ ...f, email: e.currentTarget.value })} error={fieldError(problem, 'email')} />
            <TextInput label="Name" required value={f.displayName} onChange={(e) => setF({ ...f, displayName: e.currentTarget.value })} error={fieldError(problem, 'display_name')} />
            <PasswordInput
              label="Initial password"
              description="Share it with the client over a safe channel."
              required
              value={f.password}
              onChange={(e) => setF({ ...f, password: e.currentTarget.value })}
              error={fieldError(problem, 'password')}
            />
            {problem && Object.keys(problem.fields).length === 0 && <ErrorAlert error={problem} />}
            <Group justify="flex-end">
              <Button type="submit" loading={create.isPending}>
                Create login
              </Button>
            </Group>
          </Stack>
        </form>
      </Modal>
    </>
  );
}

function Orders({ client }: { client: Client }) {
  const principal = usePrincipal();
  const navigate = useNavigate();
  const paging = usePaging(client.id);
  const orders = useQuery(SalesService.method.listOrders, {
    clientId: client.id,
    brandId: client.brandId,
    pageSize: 20,
    pageToken: paging.token,
  });
  const create = useMutation(SalesService.method.createOrder);
  const [requestId] = useState(() => crypto.randomUUID());
  const { byId } = useBrands();
  const currency = byId.get(client.brandId)?.defaultCurrency || 'EUR';
  return (
    <Card withBorder>
      <Group justify="space-between" mb="sm">
        <Title order={4}>Orders</Title>
        {can(principal, P.orderWrite, client.brandId) && !client.archived && (
          <Button
            size="xs"
            loading={create.isPending}
            onClick={() =>
              create
                .mutateAsync({ clientId: client.id, currencyCode: currency, lines: [], requestId })
                .then((r) => r.order && navigate(`/orders/${r.order.id}`))
                .catch(() => undefined)
            }
          >
            New order
          </Button>
        )}
      </Group>
      {create.error && <ErrorAlert error={create.error} />}
      <QueryView query={orders} isEmpty={(d) => d.orders.length === 0} empty="No orders yet.">
        {(data) => <OrdersTable orders={data.orders} href={(o) => `/orders/${o.id}`} />}
      </QueryView>
      <Pager paging={paging} nextToken={orders.data?.nextPageToken} />
    </Card>
  );
}

function Finance({ client }: { client: Client }) {
  const balance = useQuery(FinanceService.method.getClientBalance, { clientId: client.id, brandId: client.brandId });
  const paging = usePaging(client.id);
  const invoices = useQuery(FinanceService.method.listInvoices, {
    clientId: client.id,
    brandId: client.brandId,
    pageSize: 20,
    pageToken: paging.token,
  });
  return (
    <Stack>
      <Card withBorder>
        <Title order={4} mb="sm">
          Balance
        </Title>
        <QueryView query={balance} isEmpty={(d) => d.balances.length === 0} empty="Nothing invoiced yet.">
          {(data) => (
            <SimpleGrid cols={1} data-testid="client-balance">
              {data.balances.map((b) => (
                <Table key={b.currencyCode}>
                  <Table.Tbody>
                    <Table.Tr>
                      <Table.Td>Invoiced</Table.Td>
                      <Table.Td ta="right">{formatMinor(b.invoicedMinor, b.currencyCode)}</Table.Td>
                    </Table.Tr>
                    <Table.Tr>
                      <Table.Td>Paid</Table.Td>
                      <Table.Td ta="right">{formatMinor(b.paidMinor, b.currencyCode)}</Table.Td>
                    </Table.Tr>
                    <Table.Tr>
                      <Table.Td>Credited</Table.Td>
                      <Table.Td ta="right">{formatMinor(b.creditedMinor, b.currencyCode)}</Table.Td>
                    </Table.Tr>
                    <Table.Tr>
                      <Table.Td fw={700}>Outstanding</Table.Td>
                      <Table.Td ta="right" fw={700} data-testid={`outstanding-${b.currencyCode}`}>
                        {formatMinor(b.outstandingMinor, b.currencyCode)}
                      </Table.Td>
                    </Table.Tr>
                    {b.creditMinor > 0n && (
                      <Table.Tr>
                        <Table.Td>Credit on account</Table.Td>
                        <Table.Td ta="right">{formatMinor(b.creditMinor, b.currencyCode)}</Table.Td>
                      </Table.Tr>
                    )}
                  </Table.Tbody>
                </Table>
              ))}
            </SimpleGrid>
          )}
        </QueryView>
      </Card>
      <Card withBorder>
        <Title order={4} mb="sm">
          Invoices
        </Title>
        <QueryView query={invoices} isEmpty={(d) => d.invoices.length === 0} empty="No invoices yet.">
          {(data) => <InvoicesTable invoices={data.invoices} href={(i) => `/finance/invoices/${i.id}`} />}
        </QueryView>
        <Pager paging={paging} nextToken={invoices.data?.nextPageToken} />
      </Card>
    </Stack>
  );
}

export default function ClientPage() {
  const { clientId = '' } = useParams();
  const principal = usePrincipal();
  const invalidate = useInvalidate();
  const { byId: brands } = useBrands();
  const query = useQuery(SalesService.method.getClient, { clientId });
  const archive = useMutation(SalesService.method.archiveClient);
  const [editing, setEditing] = useState(false);
  const [archiving, setArchiving] = useState(false);
  return (
    <QueryView query={query}>
      {({ client }) => {
        if (!client) return null;
        const writable = can(principal, P.clientWrite, client.brandId) && !client.archived;
        return (
          <>
            <PageHeader
              title={
                <Group gap="sm">
                  {client.contactName}
                  {client.archived && <Badge color="gray">Archived</Badge>}
                </Group>
              }
              actions={
                <>
                  {writable && (
                    <Button variant="default" onClick={() => setEditing(true)}>
                      Edit
                    </Button>
                  )}
                  {can(principal, P.portalUserWrite, client.brandId) && !client.archived && <PortalAccess client={client} />}
                  {writable && (
                    <Button color="red" variant="light" onClick={() => setArchiving(true)}>
                      Archive
                    </Button>
                  )}
                </>
              }
            >
              {[client.company, brands.get(client.brandId)?.name].filter(Boolean).join(' · ')}
            </PageHeader>
            <Grid>
              <Grid.Col span={{ base: 12, md: 6 }}>
                <Stack>
                  <Card withBorder>
                    <Table>
                      <Table.Tbody>
                        <Table.Tr>
                          <Table.Th w={140}>Email</Table.Th>
                          <Table.Td>{client.email || '—'}</Table.Td>
                        </Table.Tr>
                        <Table.Tr>
                          <Table.Th>Phone</Table.Th>
                          <Table.Td>{client.phone || '—'}</Table.Td>
                        </Table.Tr>
                        <Table.Tr>
                          <Table.Th>Leads</Table.Th>
                          <Table.Td>
                            {client.leadIds.map((id, i) => (
                              <Anchor key={id} component={Link} to={`/leads/${id}`} mr="sm">
                                Lead {i + 1}
                              </Anchor>
                            ))}
                          </Table.Td>
                        </Table.Tr>
                        <Table.Tr>
                          <Table.Th>Client since</Table.Th>
                          <Table.Td>
                            <When value={client.createTime} />
                          </Table.Td>
                        </Table.Tr>
                      </Table.Tbody>
                    </Table>
                  </Card>
                  <Orders client={client} />
                  <Conversations clientId={client.id} brandId={client.brandId} />
                </Stack>
              </Grid.Col>
              <Grid.Col span={{ base: 12, md: 6 }}>
                {can(principal, P.invoiceRead, client.brandId) && <Finance client={client} />}
              </Grid.Col>
            </Grid>
            {editing && <EditClient client={client} opened={editing} onClose={() => setEditing(false)} />}
            <ConfirmDialog
              opened={archiving}
              onClose={() => setArchiving(false)}
              title="Archive this client?"
              confirm="Archive"
              color="red"
              onConfirm={async () => {
                await archive.mutateAsync({ clientId: client.id, etag: client.etag });
                await invalidate(SalesService);
              }}
            >
              {client.contactName} will be hidden from lists and can no longer order. Invoices and history stay.
            </ConfirmDialog>
          </>
        );
      }}
    </QueryView>
  );
}
