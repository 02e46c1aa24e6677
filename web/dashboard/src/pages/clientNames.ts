/** Client names for lists of orders and invoices (the first 200 clients of the scope, cached). */
import { useMemo } from 'react';
import { useQuery } from '@connectrpc/connect-query';
import { SalesService } from '@sentra/shared/api';
import { P, canSomewhere } from '@sentra/shared/permissions';
import { usePrincipal } from '@sentra/shared/ui';

export function useClientNames(brandId: string | null): (id: string) => string {
  const principal = usePrincipal();
  const clients = useQuery(
    SalesService.method.listClients,
    { brandId: brandId ?? '', showArchived: true, pageSize: 200 },
    { enabled: canSomewhere(principal, P.clientRead), staleTime: 60_000 },
  );
  const byId = useMemo(() => new Map((clients.data?.clients ?? []).map((c) => [c.id, c])), [clients.data]);
  return (id) => {
    const c = byId.get(id);
    return c ? c.company || c.contactName : 'Client';
  };
}
