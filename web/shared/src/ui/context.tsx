/**
 * What every screen can reach: the host's brand, the session, the typed clients. Provided once by
 * `Boot`, read with the hooks below.
 */
import { createContext, useContext, useSyncExternalStore } from 'react';
import type { Transport } from '@connectrpc/connect';
import type { BrandInfo } from '../brand';
import type { Clients } from '../api';
import type { Session, SessionState } from '../session';
import type { Principal } from '../claims';

export interface Sentra {
  /** The brand this host serves, or `null` on the neutral host. */
  brand: BrandInfo | null;
  session: Session;
  transport: Transport;
  clients: Clients;
  /** Which app this is (used for titles and storage keys). */
  app: 'dashboard' | 'portal';
}

export const SentraContext = createContext<Sentra | null>(null);

/** The app's context; only inside `Boot`. */
export function useSentra(): Sentra {
  const value = useContext(SentraContext);
  if (!value) throw new Error('useSentra outside <Boot>');
  return value;
}

/** The session state, re-rendering on sign-in, refresh and expiry. */
export function useSessionState(): SessionState {
  const { session } = useSentra();
  return useSyncExternalStore(session.subscribe, session.getState);
}

/** The signed-in principal; only under `RequireSession`, which guarantees one. */
export function usePrincipal(): Principal {
  const state = useSessionState();
  if (state.status !== 'signed-in') throw new Error('usePrincipal without a session');
  return state.principal;
}
