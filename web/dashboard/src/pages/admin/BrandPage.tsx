/** One brand: its settings, its people and their roles, and archiving. */
import { useState } from 'react';
import { Anchor, Badge, Button, Card, Group, Select, Stack, Table, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { Link, useParams } from 'react-router';
import { TenancyService } from '@sentra/shared/api';
import { BrandRole, type Brand } from '@sentra/shared/gen/sentra/tenancy/v1/resources_pb';
import { BRAND_ROLE_LABEL } from '@sentra/shared/labels';
import { P, can } from '@sentra/shared/permissions';
import { ConfirmDialog, ErrorAlert, PageHeader, QueryView, usePrincipal } from '@sentra/shared/ui';
import { useInvalidate, useUsers } from '../../data';
import { BrandForm } from './BrandForm';
import { RemoveRoleButton, RoleSelect, useBrandRoles } from './roles';

function Members({ brand }: { brand: Brand }) {
  const principal = usePrincipal();
  const users = useUsers();
  const members = useQuery(TenancyService.method.listBrandMembers, { brandId: brand.id });
  const roles = useBrandRoles();
  const [userId, setUserId] = useState<string | null>(null);
  const [role, setRole] = useState(BrandRole.AGENT);
  const writable = can(principal, P.brandAccessWrite, brand.id);
  const present = new Set((members.data?.accesses ?? []).map((a) => a.userId));
  return (
    <Card withBorder>
      <Title order={4} mb="sm">
        People
      </Title>
      <QueryView query={members} isEmpty={(d) => d.accesses.length === 0} empty="Nobody has a role on this brand yet (owners and admins see every brand).">
        {(data) => (
          <Table data-testid="brand-members">
            <Table.Tbody>
              {data.accesses.map((a) => (
                <Table.Tr key={a.userId}>
                  <Table.Td>
                    {can(principal, P.userWrite) ? (
                      <Anchor component={Link} to={`/admin/users/${a.userId}`}>
                        {users.name(a.userId)}
                      </Anchor>
                    ) : (
                      users.name(a.userId)
                    )}
                  </Table.Td>
                  <Table.Td>
                    {writable ? (
                      <RoleSelect
                        ariaLabel={`Role of ${users.name(a.userId)}`}
                        size="xs"
                        value={a.role}
                        onChange={(r) => void roles.grant(brand.id, a.userId, r)}
                      />
                    ) : (
                      <Badge>{BRAND_ROLE_LABEL[a.role]}</Badge>
                    )}
                  </Table.Td>
                  {writable && (
                    <Table.Td ta="right">
                      <RemoveRoleButton onClick={() => void roles.revoke(brand.id, a.userId)} />
                    </Table.Td>
                  )}
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </QueryView>
      {roles.error && <ErrorAlert error={roles.error} />}
      {writable && (
        <Group mt="md" align="flex-end">
          <Select
            label="Add a person"
            searchable
            w={240}
            data={users.users.filter((u) => !present.has(u.id)).map((u) => ({ value: u.id, label: u.displayName }))}
            value={userId}
            onChange={setUserId}
            nothingFoundMessage="Everyone has a role already"
          />
          <RoleSelect label="Role" value={role} onChange={setRole} />
          <Button
            disabled={!userId}
            loading={roles.granting}
            onClick={async () => {
              if (userId && (await roles.grant(brand.id, userId, role))) setUserId(null);
            }}
          >
            Add
          </Button>
        </Group>
      )}
    </Card>
  );
}

export default function BrandPage() {
  const { brandId = '' } = useParams();
  const principal = usePrincipal();
  const invalidate = useInvalidate();
  const query = useQuery(TenancyService.method.getBrand, { brandId });
  const archive = useMutation(TenancyService.method.archiveBrand);
  const [archiving, setArchiving] = useState(false);
  return (
    <QueryView query={query}>
      {({ brand }) =>
        brand && (
          <>
            <PageHeader
              title={
                <Group gap="sm">
                  {brand.name}
                  {brand.archived && <Badge color="gray">Archived</Badge>}
                </Group>
              }
              actions={
                can(principal, P.brandWrite, brand.id) &&
                !brand.archived && (
                  <Button color="red" variant="light" onClick={() => setArchiving(true)}>
                    Archive brand
                  </Button>
                )
              }
            >
              {brand.domain}
            </PageHeader>
            <Stack>
              {can(principal, P.brandWrite, brand.id) && !brand.archived && (
                <Card withBorder>
                  <Title order={4} mb="sm">
                    Settings
                  </Title>
                  <BrandForm
                    key={brand.etag}
                    brand={brand}
                    onSaved={() => {
                      notifications.show({ color: 'green', message: 'Brand saved.' });
                      void invalidate(TenancyService);
                    }}
                  />
                </Card>
              )}
              <Members brand={brand} />
            </Stack>
            <ConfirmDialog
              opened={archiving}
              onClose={() => setArchiving(false)}
              title={`Archive ${brand.name}?`}
              confirm="Archive"
              color="red"
              onConfirm={async () => {
                await archive.mutateAsync({ brandId: brand.id, etag: brand.etag });
                await invalidate(TenancyService);
              }}
            >
              The brand becomes read-only and its domain is released. Its records stay.
            </ConfirmDialog>
          </>
        )
      }
    </QueryView>
  );
}
