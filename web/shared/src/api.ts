/**
 * The generated Connect-ES clients, over gRPC-Web through Envoy on the page's own origin.
 *
 * Two transports: `public` for calls that need no token (sign-in, refresh, brand resolution), and
 * the session's, which adds `authorization` (refreshing first when the token is about to expire)
 * and retries a call once with a fresh token when it came back UNAUTHENTICATED.
 */
import { Code, ConnectError, createClient, type Interceptor, type Transport } from '@connectrpc/connect';
import { createGrpcWebTransport } from '@connectrpc/connect-web';
import { AuthService } from './gen/sentra/tenancy/v1/auth_service_pb';
import { TenancyService } from './gen/sentra/tenancy/v1/tenancy_service_pb';
import { SalesService } from './gen/sentra/sales/v1/sales_service_pb';
import { FinanceService } from './gen/sentra/finance/v1/finance_service_pb';
import { CommService } from './gen/sentra/comm/v1/comm_service_pb';
import { NotificationService } from './gen/sentra/comm/v1/notification_service_pb';
import { WebhookService } from './gen/sentra/comm/v1/webhook_service_pb';
import { AutomationService } from './gen/sentra/comm/v1/automation_service_pb';
import type { AuthApi, Session } from './session';

/** Every call carries an `x-request-id`; Envoy keeps it and the services log it. */
const requestId: Interceptor = (next) => (req) => {
  if (!req.header.has('x-request-id')) req.header.set('x-request-id', crypto.randomUUID());
  return next(req);
};

/**
 * A unary call whose message carries a `requestId` (which the services apply once) is marked
 * idempotent with an `idempotency-key` header, so Envoy may retry it on another gateway when a
 * replica fails under it. Calls without one are never retried once they reached a gateway.
 */
export const idempotencyKey: Interceptor = (next) => (req) => {
  if (!req.stream && !req.header.has('idempotency-key')) {
    const id = (req.message as { requestId?: unknown }).requestId;
    if (typeof id === 'string' && id !== '') req.header.set('idempotency-key', id);
  }
  return next(req);
};

/** Bearer token from the session; one retry with a refreshed token after UNAUTHENTICATED. */
export function authInterceptor(session: Session): Interceptor {
  return (next) => async (req) => {
    const token = await session.accessToken();
    if (token !== null) req.header.set('authorization', `Bearer ${token}`);
    try {
      return await next(req);
    } catch (error) {
      if (token === null || req.stream || ConnectError.from(error).code !== Code.Unauthenticated) throw error;
      const fresh = await session.handleUnauthenticated(token);
      if (fresh === null) throw error;
      req.header.set('authorization', `Bearer ${fresh}`);
      return await next(req);
    }
  };
}

/** A gRPC-Web transport to `baseUrl` (the page's origin in the apps). */
export function grpcWebTransport(baseUrl: string, interceptors: Interceptor[] = []): Transport {
  return createGrpcWebTransport({ baseUrl, interceptors: [requestId, idempotencyKey, ...interceptors] });
}

/** `AuthApi` for a `Session`, over a transport without the session's interceptor. */
export function authApi(publicTransport: Transport): AuthApi {
  const auth = createClient(AuthService, publicTransport);
  return {
    async login(email, password, host) {
      const { tokens } = await auth.login({ email, password, host });
      if (!tokens) throw new ConnectError('no tokens in the answer', Code.Internal);
      return tokens;
    },
    async refresh(refreshToken) {
      const { tokens } = await auth.refresh({ refreshToken });
      if (!tokens) throw new ConnectError('no tokens in the answer', Code.Internal);
      return tokens;
    },
    async logout(refreshToken) {
      await auth.logout({ refreshToken });
    },
  };
}

/** Typed clients for imperative flows (hooks use the transport through connect-query). */
export function clients(transport: Transport) {
  return {
    tenancy: createClient(TenancyService, transport),
    sales: createClient(SalesService, transport),
    finance: createClient(FinanceService, transport),
    comm: createClient(CommService, transport),
    notifications: createClient(NotificationService, transport),
    webhooks: createClient(WebhookService, transport),
    automation: createClient(AutomationService, transport),
  };
}

export type Clients = ReturnType<typeof clients>;

export { AuthService, TenancyService, SalesService, FinanceService, CommService, NotificationService, WebhookService, AutomationService };
