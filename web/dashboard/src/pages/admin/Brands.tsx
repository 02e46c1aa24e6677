/** The organization's brands (white-label workspaces) and a new one, for owners and admins. */
import { useState } from 'react';
import { Anchor, Badge, Button, Card, ColorSwatch, Group, Modal, Table } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { Link, useNavigate } from 'react-router';
import { TenancyService } from '@sentra/shared/api';
import { P, can } from '@sentra/shared/permissions';
import { ListTable, PageHeader, QueryView, usePrincipal } from '@sentra/shared/ui';
import { useBrands, useInvalidate } from '../../data';
import { BrandForm } from './BrandForm';

export default function Brands() {
  const principal = usePrincipal();
  const brands = useBrands();
  const invalidate = useInvalidate();
  const navigate = useNavigate();
  const [creating, setCreating] = useState(false);
  return (
    <>
      <PageHeader
        title="Brands"
        actions={can(principal, P.brandCreate) && <Button onClick={() => setCreating(true)}>New brand</Button>}
      >
        Each brand is a white-label workspace with its own domain, colours and invoice numbers.
      </PageHeader>
      <Card withBorder padding={0}>
        <QueryView query={brands} isEmpty={(d) => d.brands.length === 0} empty="No brands yet.">
          {(data) => (
            <ListTable minWidth={560} testId="brands-table" columns={['Brand', 'Domain', 'Invoices', 'Currency']}>
              {data.brands.map((b) => (
                <Table.Tr key={b.id}>
                  <Table.Td>
                    <Group gap="xs">
                      <ColorSwatch color={b.primaryColor || '#ccc'} size={14} />
                      <Anchor component={Link} to={`/admin/brands/${b.id}`}>
                        {b.name}
                      </Anchor>
                      {b.archived && <Badge color="gray">Archived</Badge>}
                    </Group>
                  </Table.Td>
                  <Table.Td>
                    <Anchor href={`${window.location.protocol}//${b.domain}${window.location.port ? `:${window.location.port}` : ''}/app/`}>
                      {b.domain}
                    </Anchor>
                  </Table.Td>
                  <Table.Td>{b.invoicePrefix}</Table.Td>
                  <Table.Td>{b.defaultCurrency}</Table.Td>
                </Table.Tr>
              ))}
            </ListTable>
          )}
        </QueryView>
      </Card>
      <Modal opened={creating} onClose={() => setCreating(false)} title="New brand" size="xl">
        <BrandForm
          onCancel={() => setCreating(false)}
          onSaved={(brand) => {
            setCreating(false);
            notifications.show({ color: 'green', message: `Brand ${brand.name} created.` });
            void invalidate(TenancyService);
            navigate(`/admin/brands/${brand.id}`);
          }}
        />
      </Modal>
    </>
  );
}
