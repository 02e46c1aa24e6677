import { describe, expect, it } from 'vitest';
import { createClient, createRouterTransport } from '@connectrpc/connect';
import { SalesService } from './gen/sentra/sales/v1/sales_service_pb';
import { idempotencyKey } from './api';

describe('idempotencyKey', () => {
  it('marks exactly the calls that carry a request id, with that id', async () => {
    const seen: (string | null)[] = [];
    const transport = createRouterTransport(
      ({ service }) => {
        service(SalesService, {
          createLead: (_req, ctx) => {
            seen.push(ctx.requestHeader.get('idempotency-key'));
            return {};
          },
          listLeads: (_req, ctx) => {
            seen.push(ctx.requestHeader.get('idempotency-key'));
            return {};
          },
        });
      },
      { transport: { interceptors: [idempotencyKey] } },
    );
    const sales = createClient(SalesService, transport);
    await sales.createLead({ requestId: 'req-7' });
    await sales.createLead({ requestId: '' });
    await sales.listLeads({});
    expect(seen).toEqual(['req-7', null, null]);
  });
});
