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
import { ROLES } from './BrandPage';

export default function UserPage() {
  const { userId = '' } = useParams();
  const principal = usePrincipal();
  const invalidate = useInvalidate();
  const { brands, byId } = useBrands();
  const user = useQuery(TenancyService.method.getUser, { userId });
  const access = useQuery(TenancyService.method.listUserBrandAccess, { userId });
  const grant = useMutation(TenancyService.method.grantBrandAccess);
  const revoke = useMutation(TenancyService.method.revokeBrandAccess);
  const deactivate = useMutation(TenancyService.method.deactivateUser);
  const [brandId, setBrandId] = useState<string | null>(null);
  const [role, setRole] = useState(String(BrandRole.AGENT));
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
                            <Button
                              size="xs"
                              variant="subtle"
                              color="red"
                              onClick={() => revoke.mutateAsync({ brandId: a.brandId, userId: u.id }).then(refresh).catch(() => undefined)}
                            >
                              Remove
                            </Button>
                          </Table.Td>
                        </Table.Tr>
                      ))}
                    </Table.Tbody>
                  </Table>
                )}
              </QueryView>
              <Stack mt="md">
                {(grant.error || revoke.error) && <ErrorAlert error={grant.error ?? revoke.error} />}
                <Group align="flex-end">
                  <Select
                    label="Brand"
                    w={220}
                    data={brands.filter((b) => !b.archived && !held.has(b.id)).map((b) => ({ value: b.id, label: b.name }))}
                    value={brandId}
                    onChange={setBrandId}
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
                    disabled={!brandId}
                    loading={grant.isPending}
                    onClick={() =>
                      brandId &&
                      grant
                        .mutateAsync({ brandId, userId: u.id, role: Number(role) as BrandRole })
                        .then(() => {
                          setBrandId(null);
                          return refresh();
                        })
                        .catch(() => undefined)
                    }
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
