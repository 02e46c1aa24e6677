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

export const ROLES = [BrandRole.MANAGER, BrandRole.AGENT, BrandRole.FINANCE, BrandRole.VIEWER];

function Members({ brand }: { brand: Brand }) {
  const principal = usePrincipal();
  const users = useUsers();
  const invalidate = useInvalidate();
  const members = useQuery(TenancyService.method.listBrandMembers, { brandId: brand.id });
  const grant = useMutation(TenancyService.method.grantBrandAccess);
  const revoke = useMutation(TenancyService.method.revokeBrandAccess);
  const [userId, setUserId] = useState<string | null>(null);
  const [role, setRole] = useState<string>(String(BrandRole.AGENT));
  const writable = can(principal, P.brandAccessWrite, brand.id);
  const refresh = () => invalidate(TenancyService);
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
                      <Select
                        aria-label={`Role of ${users.name(a.userId)}`}
                        size="xs"
                        w={140}
                        data={ROLES.map((r) => ({ value: String(r), label: BRAND_ROLE_LABEL[r] }))}
                        value={String(a.role)}
                        allowDeselect={false}
                        onChange={(v) =>
                          v &&
                          grant
                            .mutateAsync({ brandId: brand.id, userId: a.userId, role: Number(v) as BrandRole })
                            .then(refresh)
                            .catch(() => undefined)
                        }
                      />
                    ) : (
                      <Badge>{BRAND_ROLE_LABEL[a.role]}</Badge>
                    )}
                  </Table.Td>
                  {writable && (
                    <Table.Td ta="right">
                      <Button
                        size="xs"
                        variant="subtle"
                        color="red"
                        onClick={() => revoke.mutateAsync({ brandId: brand.id, userId: a.userId }).then(refresh).catch(() => undefined)}
                      >
                        Remove
                      </Button>
                    </Table.Td>
                  )}
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </QueryView>
      {(grant.error || revoke.error) && <ErrorAlert error={grant.error ?? revoke.error} />}
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
          <Select
            label="Role"
            w={140}
            data={ROLES.map((r) => ({ value: String(r), label: BRAND_ROLE_LABEL[r] }))}
            value={role}
            onChange={(v) => setRole(v ?? String(BrandRole.AGENT))}
            allowDeselect={false}
          />
          <Button
            disabled={!userId}
            loading={grant.isPending}
            onClick={() =>
              userId &&
              grant
                .mutateAsync({ brandId: brand.id, userId, role: Number(role) as BrandRole })
                .then(() => {
                  setUserId(null);
                  return refresh();
                })
                .catch(() => undefined)
            }
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
