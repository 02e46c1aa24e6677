/** One staff user: organization role, state, roles on each brand, deactivation. */
import { useState } from 'react';
import { Badge, Button, Card, Group, Select, Stack, Table, Text, Title } from '@mantine/core';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { useParams } from 'react-router';
import { TenancyService } from '@sentra/shared/api';
import { BrandRole, OrgRole, UserState } from '@sentra/shared/gen/sentra/tenancy/v1/resources_pb';
import { BRAND_ROLE_LABEL, ORG_ROLE_LABEL, USER_STATE_LABEL } from '@sentra/shared/labels';
import { ConfirmDialog, ErrorAlert, PageHeader, QueryView, usePrincipal } from '@sentra/shared/ui';
import { useBrands, useInvalidate } from '../../data';
import { RemoveRoleButton, RoleSelect, useBrandRoles } from './roles';

export default function UserPage() {
  const { userId = '' } = useParams();
  const principal = usePrincipal();
  const invalidate = useInvalidate();
  const { brands, byId } = useBrands();
  const user = useQuery(TenancyService.method.getUser, { userId });
  const access = useQuery(TenancyService.method.listUserBrandAccess, { userId });
  const roles = useBrandRoles();
  const deactivate = useMutation(TenancyService.method.deactivateUser);
  const [brandId, setBrandId] = useState<string | null>(null);
  const [role, setRole] = useState(BrandRole.AGENT);
  const [deactivating, setDeactivating] = useState(false);
  const refresh = () => invalidate(TenancyService);
  const held = new Set((access.data?.accesses ?? []).map((a) => a.brandId));
  return (
    <QueryView query={user}>
      {({ user: u }) =>
        u && (
          <>
            <PageHeader
              title={u.displayName}
              actions={
                u.state !== UserState.DEACTIVATED &&
                u.id !== principal.userId &&
                u.orgRole !== OrgRole.OWNER && (
                  <Button color="red" variant="light" onClick={() => setDeactivating(true)}>
                    Deactivate
                  </Button>
                )
              }
            >
              {u.email} · {ORG_ROLE_LABEL[u.orgRole]} · {USER_STATE_LABEL[u.state]}
            </PageHeader>
            <Card withBorder>
              <Title order={4} mb="sm">
                Brand roles
              </Title>
              {(u.orgRole === OrgRole.OWNER || u.orgRole === OrgRole.ADMIN) && (
                <Text size="sm" c="dimmed" mb="sm">
                  As {ORG_ROLE_LABEL[u.orgRole].toLowerCase()}, {u.displayName} holds every right on every brand.
                </Text>
              )}
              <QueryView query={access} isEmpty={(d) => d.accesses.length === 0} empty="No brand roles.">
                {(data) => (
                  <Table data-testid="user-roles">
                    <Table.Tbody>
                      {data.accesses.map((a) => (
                        <Table.Tr key={a.brandId}>
                          <Table.Td>{byId.get(a.brandId)?.name ?? 'Brand'}</Table.Td>
                          <Table.Td>
                            <Badge>{BRAND_ROLE_LABEL[a.role]}</Badge>
                          </Table.Td>
                          <Table.Td ta="right">
                            <RemoveRoleButton onClick={() => void roles.revoke(a.brandId, u.id)} />
                          </Table.Td>
                        </Table.Tr>
                      ))}
                    </Table.Tbody>
                  </Table>
                )}
              </QueryView>
              <Stack mt="md">
                {roles.error && <ErrorAlert error={roles.error} />}
                <Group align="flex-end">
                  <Select
                    label="Brand"
                    w={220}
                    data={brands.filter((b) => !b.archived && !held.has(b.id)).map((b) => ({ value: b.id, label: b.name }))}
                    value={brandId}
                    onChange={setBrandId}
                  />
                  <RoleSelect label="Role" value={role} onChange={setRole} />
                  <Button
                    disabled={!brandId}
                    loading={roles.granting}
                    onClick={async () => {
                      if (brandId && (await roles.grant(brandId, u.id, role))) setBrandId(null);
                    }}
                  >
                    Grant role
                  </Button>
                </Group>
              </Stack>
            </Card>
            <ConfirmDialog
              opened={deactivating}
              onClose={() => setDeactivating(false)}
              title={`Deactivate ${u.displayName}?`}
              confirm="Deactivate"
              color="red"
              onConfirm={async () => {
                await deactivate.mutateAsync({ userId: u.id });
                await refresh();
              }}
            >
              They can no longer sign in. Their history stays.
            </ConfirmDialog>
          </>
        )
      }
    </QueryView>
  );
}
