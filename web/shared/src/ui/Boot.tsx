/**
 * Starts an app: builds the transports and the session, resolves the host's brand, resumes a
 * stored session, and provides the theme, the query cache and the clients to everything below.
 */
import { useEffect, useMemo, useState, type ReactNode } from 'react';
import { Button, Center, Loader, MantineProvider } from '@mantine/core';
import { Notifications } from '@mantine/notifications';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { TransportProvider } from '@connectrpc/connect-query';
import { Code, ConnectError } from '@connectrpc/connect';
import { authApi, authInterceptor, clients, grpcWebTransport } from '../api';
import { brandTheme, cssVariables, resolveBrand, type BrandInfo } from '../brand';
import { localRefreshStore, Session } from '../session';
import { SentraContext, type Sentra } from './context';
import { FullPage } from './FullPage';

/** Codes worth retrying automatically: the server or the network, not the request. */
const TRANSIENT = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Unknown, Code.Internal, Code.ResourceExhausted]);

function setup(app: Sentra['app']) {
  const origin = window.location.origin;
  const publicTransport = grpcWebTransport(origin);
  const session = new Session(authApi(publicTransport), localRefreshStore(`sentra.${app}.refresh`), { name: app });
  const transport = grpcWebTransport(origin, [authInterceptor(session)]);
  const queryClient = new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 5_000,
        retry: (count, error) => count < 2 && TRANSIENT.has(ConnectError.from(error).code),
      },
      mutations: { retry: false },
    },
  });
  // Whatever the last person saw must not survive their session.
  session.subscribe(() => {
    if (session.getState().status === 'signed-out') queryClient.clear();
  });
  return { publicTransport, session, transport, queryClient, clients: clients(transport) };
}

type BrandState = { state: 'loading' } | { state: 'ready'; brand: BrandInfo | null } | { state: 'failed'; error: unknown };

export function Boot({ app, children }: { app: Sentra['app']; children: ReactNode }) {
  const [s] = useState(() => setup(app));
  const [brand, setBrand] = useState<BrandState>({ state: 'loading' });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let live = true;
    setBrand({ state: 'loading' });
    resolveBrand(s.publicTransport, window.location.hostname)
      .then((b) => live && setBrand({ state: 'ready', brand: b }))
      .catch((error: unknown) => live && setBrand({ state: 'failed', error }));
    return () => {
      live = false;
    };
  }, [s, attempt]);

  useEffect(() => {
    void s.session.restore();
  }, [s]);

  const resolved = brand.state === 'ready' ? brand.brand : null;
  const theme = useMemo(() => brandTheme(resolved), [resolved]);
  useEffect(() => {
    const name = resolved?.displayName ?? 'Sentra';
    document.title = app === 'portal' ? `${name} · Client portal` : `${name} · Dashboard`;
  }, [resolved, app]);

  const value: Sentra | null = useMemo(
    () =>
      brand.state === 'ready'
        ? { brand: brand.brand, session: s.session, transport: s.transport, clients: s.clients, app }
        : null,
    [brand, s, app],
  );

  return (
    <MantineProvider theme={theme} cssVariablesResolver={cssVariables}>
      <Notifications position="top-right" />
      {brand.state === 'loading' && (
        <Center mih="100vh" aria-busy="true">
          <Loader />
        </Center>
      )}
      {brand.state === 'failed' && (
        <SentraContext.Provider
          value={{ brand: null, session: s.session, transport: s.transport, clients: s.clients, app }}
        >
          <FullPage
            title="Sentra is not reachable"
            testId="unreachable"
            actions={<Button onClick={() => setAttempt((n) => n + 1)}>Try again</Button>}
          >
            We could not reach the server. Check your connection; if it persists, the service may be down for a
            moment.
          </FullPage>
        </SentraContext.Provider>
      )}
      {value && (
        <SentraContext.Provider value={value}>
          <TransportProvider transport={s.transport}>
            <QueryClientProvider client={s.queryClient}>{children}</QueryClientProvider>
          </TransportProvider>
        </SentraContext.Provider>
      )}
    </MantineProvider>
  );
}
