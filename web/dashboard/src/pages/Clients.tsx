/** Clients of the brand(s): search, archived ones on request, paged. */
import { useState } from 'react';
import { Anchor, Badge, Card, Group, Switch, Table, TextInput } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { useQuery } from '@connectrpc/connect-query';
import { Link } from 'react-router';
import { SalesService } from '@sentra/shared/api';
import { ListTable, PageHeader, Pager, QueryView, When, usePaging } from '@sentra/shared/ui';
import { useScope } from '../layout/scope';
import { useBrands } from '../data';

export default function Clients() {
  const scope = useScope();
  const { byId: brands } = useBrands();
  const [search, setSearch] = useState('');
  const [query] = useDebouncedValue(search.trim(), 300);
  const [archived, setArchived] = useState(false);
  const paging = usePaging(`${scope.brandId}|${query}|${archived}`);
  const clients = useQuery(SalesService.method.listClients, {
    brandId: scope.brandId ?? '',
    query,
    showArchived: archived,
    pageSize: 25,
    pageToken: paging.token,
  });
  return (
    <>
      <PageHeader title="Clients">Leads become clients when they are converted.</PageHeader>
      <Group mb="md" align="flex-end">
        <TextInput label="Search" placeholder="Name, email or company" value={search} onChange={(e) => setSearch(e.currentTarget.value)} w={280} />
        <Switch label="Show archived" checked={archived} onChange={(e) => setArchived(e.currentTarget.checked)} mb={6} />
      </Group>
      <Card withBorder padding={0}>
        <QueryView query={clients} isEmpty={(d) => d.clients.length === 0} empty="No clients yet. Convert a qualified lead to create one.">
          {(data) => (
            <ListTable minWidth={560} testId="clients-table" columns={['Client', 'Company', 'Email', !scope.brandId && 'Brand', 'Since']}>
              {data.clients.map((c) => (
                <Table.Tr key={c.id}>
                  <Table.Td>
                    <Group gap="xs">
                      <Anchor component={Link} to={`/clients/${c.id}`}>
                        {c.contactName}
                      </Anchor>
                      {c.archived && <Badge color="gray">Archived</Badge>}
                    </Group>
                  </Table.Td>
                  <Table.Td>{c.company}</Table.Td>
                  <Table.Td>{c.email}</Table.Td>
                  {!scope.brandId && <Table.Td>{brands.get(c.brandId)?.name}</Table.Td>}
                  <Table.Td>
                    <When value={c.createTime} />
                  </Table.Td>
                </Table.Tr>
              ))}
            </ListTable>
          )}
        </QueryView>
      </Card>
      <Pager paging={paging} nextToken={clients.data?.nextPageToken} />
    </>
  );
}
