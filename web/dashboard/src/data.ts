/**
 * Lookups many pages need (brands, people), fetched once and cached by TanStack Query, and the
 * one way pages refresh what a change made stale.
 */
import { useMemo } from 'react';
import { useQuery } from '@connectrpc/connect-query';
import { createConnectQueryKey } from '@connectrpc/connect-query';
import { useQueryClient } from '@tanstack/react-query';
import type { DescService } from '@bufbuild/protobuf';
import { TenancyService } from '@sentra/shared/api';
import { usePrincipal } from '@sentra/shared/ui';
import { P, can } from '@sentra/shared/permissions';
import type { Brand, User } from '@sentra/shared/gen/sentra/tenancy/v1/resources_pb';

/** The organization's brands the person can see (archived ones too, flagged). */
export function useBrands() {
  const query = useQuery(TenancyService.method.listBrands, { pageSize: 200, showArchived: true }, { staleTime: 60_000 });
  const byId = useMemo(() => new Map<string, Brand>((query.data?.brands ?? []).map((b) => [b.id, b])), [query.data]);
  return { ...query, brands: query.data?.brands ?? [], byId };
}

/** The organization's staff, by id (for names of assignees, authors, actors). */
export function useUsers() {
  const principal = usePrincipal();
  const allowed = can(principal, P.userRead);
  const query = useQuery(TenancyService.method.listUsers, { pageSize: 200 }, { enabled: allowed, staleTime: 60_000 });
  const byId = useMemo(() => new Map<string, User>((query.data?.users ?? []).map((u) => [u.id, u])), [query.data]);
  return { ...query, users: query.data?.users ?? [], byId, name: (id: string) => (id ? (byId.get(id)?.displayName ?? 'Someone') : '') };
}

/** Marks every cached answer of `services` stale (and refetches what is on screen). */
export function useInvalidate() {
  const client = useQueryClient();
  return (...services: DescService[]) =>
    Promise.all(
      services.map((schema) =>
        client.invalidateQueries({ queryKey: createConnectQueryKey({ schema, cardinality: undefined }) }),
      ),
    );
}
