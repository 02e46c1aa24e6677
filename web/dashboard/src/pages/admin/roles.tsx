/** Brand roles, as the brand page (its people) and the user page (their brands) both edit them. */
import { Button, Select } from '@mantine/core';
import { useMutation } from '@connectrpc/connect-query';
import { TenancyService } from '@sentra/shared/api';
import { BrandRole } from '@sentra/shared/gen/sentra/tenancy/v1/resources_pb';
import { BRAND_ROLE_LABEL } from '@sentra/shared/labels';
import { useInvalidate } from '../../data';

/** The roles a person can hold on a brand, most rights first. */
export const ROLES = [BrandRole.MANAGER, BrandRole.AGENT, BrandRole.FINANCE, BrandRole.VIEWER];

/** Grants and revocations that refresh Tenancy's lists when they land. */
export function useBrandRoles() {
  const invalidate = useInvalidate();
  const grant = useMutation(TenancyService.method.grantBrandAccess);
  const revoke = useMutation(TenancyService.method.revokeBrandAccess);
  const refresh = () => invalidate(TenancyService);
  return {
    /** Resolves `true` once granted; a refusal resolves `false` and shows in `error`. */
    grant: (brandId: string, userId: string, role: BrandRole) =>
      grant
        .mutateAsync({ brandId, userId, role })
        .then(refresh)
        .then(() => true)
        .catch(() => false),
    revoke: (brandId: string, userId: string) =>
      revoke
        .mutateAsync({ brandId, userId })
        .then(refresh)
        .catch(() => undefined),
    granting: grant.isPending,
    error: grant.error ?? revoke.error,
  };
}

/** A role picker. */
export function RoleSelect({
  value,
  onChange,
  label,
  ariaLabel,
  size,
}: {
  value: BrandRole;
  onChange: (role: BrandRole) => void;
  label?: string;
  ariaLabel?: string;
  size?: 'xs';
}) {
  return (
    <Select
      label={label}
      aria-label={ariaLabel}
      size={size}
      w={140}
      data={ROLES.map((r) => ({ value: String(r), label: BRAND_ROLE_LABEL[r] }))}
      value={String(value)}
      allowDeselect={false}
      onChange={(v) => v !== null && onChange(Number(v) as BrandRole)}
    />
  );
}

/** Takes a role away. */
export function RemoveRoleButton({ onClick }: { onClick: () => void }) {
  return (
    <Button size="xs" variant="subtle" color="red" onClick={onClick}>
      Remove
    </Button>
  );
}
