/**
 * The signed-in session of one app in one browser.
 *
 * - The access token lives in memory only; the refresh token is kept in `localStorage` (per app),
 *   so a reload or a new tab stays signed in. Refresh tokens are single-use and rotate on every
 *   refresh; a stolen one that is used twice revokes its whole family on the server.
 * - One refresh at a time: concurrent calls that find the token close to expiry (or get
 *   UNAUTHENTICATED with it) wait for the same refresh. Across tabs, refreshes run under a Web
 *   Lock and re-read the stored token first, so two tabs never spend the same refresh token.
 * - A refresh the server refuses ends the session (`expired`); a network failure does not.
 */
import { Code, ConnectError } from '@connectrpc/connect';
import { decodeAccessToken, type Principal } from './claims';

/** What Tenancy's AuthService answers with. */
export interface TokenPairLike {
  accessToken: string;
  expiresIn: bigint;
  refreshToken: string;
}

/** The three AuthService calls the session needs (a client without the session's interceptor). */
export interface AuthApi {
  login(email: string, password: string, host: string): Promise<TokenPairLike>;
  refresh(refreshToken: string): Promise<TokenPairLike>;
  logout(refreshToken: string): Promise<void>;
}

/** Where the refresh token is kept between page loads. */
export interface RefreshStore {
  get(): string | null;
  set(token: string | null): void;
  /** Calls `onChange` when another tab changes the token; returns an unsubscribe function. */
  watch?(onChange: (token: string | null) => void): () => void;
}

/** Runs `task` while holding a lock shared with the other tabs of this origin. */
export type LockFn = <T>(name: string, task: () => Promise<T>) => Promise<T>;

export type SessionState =
  | { status: 'restoring' }
  | { status: 'signed-out'; reason: 'signed-out' | 'expired' | null }
  | { status: 'signed-in'; principal: Principal };

export interface SessionOptions {
  /** Milliseconds since the epoch (tests pass a fake clock). */
  now?: () => number;
  /** Cross-tab lock; defaults to the Web Locks API where the browser has it. */
  lock?: LockFn;
  /** Refresh when the access token has less than this left (default 60 s). */
  refreshMarginMs?: number;
  /** Lock name; one per app. */
  name?: string;
}

function webLock(): LockFn | undefined {
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
  if (!locks) return undefined;
  // The browser resolves the lock's promise with the task's settled value.
  return <T>(name: string, task: () => Promise<T>) => locks.request(name, task) as unknown as Promise<T>;
}

/** A `RefreshStore` in `localStorage` under `key`. */
export function localRefreshStore(key: string): RefreshStore {
  return {
    get: () => window.localStorage.getItem(key),
    set: (token) => (token === null ? window.localStorage.removeItem(key) : window.localStorage.setItem(key, token)),
    watch(onChange) {
      const listener = (e: StorageEvent) => {
        if (e.key === key) onChange(e.newValue);
      };
      window.addEventListener('storage', listener);
      return () => window.removeEventListener('storage', listener);
    },
  };
}

export class Session {
  private state: SessionState = { status: 'restoring' };
  private listeners = new Set<() => void>();
  private access: { token: string; expiresAt: number } | null = null;
  private inflight: Promise<string | null> | null = null;
  private readonly now: () => number;
  private readonly lock: LockFn;
  private readonly margin: number;
  private readonly lockName: string;

  constructor(
    private readonly api: AuthApi,
    private readonly store: RefreshStore,
    options: SessionOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.lock = options.lock ?? webLock() ?? ((_name, task) => task());
    this.margin = options.refreshMarginMs ?? 60_000;
    this.lockName = `sentra-refresh-${options.name ?? 'app'}`;
    // Signed out in another tab: follow.
    store.watch?.((token) => {
      if (token === null && this.state.status === 'signed-in') this.end('signed-out');
    });
  }

  /** For `useSyncExternalStore`. */
  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** The current state (a stable object until it changes). */
  getState = (): SessionState => this.state;

  /** The signed-in principal, or null. */
  principal(): Principal | null {
    return this.state.status === 'signed-in' ? this.state.principal : null;
  }

  private set(state: SessionState) {
    this.state = state;
    for (const listener of this.listeners) listener();
  }

  private accept(pair: TokenPairLike) {
    const principal = decodeAccessToken(pair.accessToken);
    // Expiry from the server's `expires_in`, counted on this clock: immune to a skewed local clock.
    this.access = { token: pair.accessToken, expiresAt: this.now() + Number(pair.expiresIn) * 1000 };
    this.store.set(pair.refreshToken);
    this.set({ status: 'signed-in', principal });
  }

  private end(reason: 'signed-out' | 'expired') {
    this.access = null;
    this.set({ status: 'signed-out', reason });
  }

  /** On start-up: resumes the stored session if its refresh token still works. */
  async restore(): Promise<void> {
    if (this.store.get() === null) {
      this.set({ status: 'signed-out', reason: null });
      return;
    }
    try {
      const token = await this.refreshOnce();
      if (token === null && this.state.status !== 'signed-out') this.set({ status: 'signed-out', reason: null });
    } catch {
      // Unreachable server: stay signed out for now, but keep the token for the next attempt.
      this.set({ status: 'signed-out', reason: null });
    }
    if (this.state.status === 'signed-out' && this.state.reason === 'expired') {
      // A stale token from an old visit is not news to the person opening the app.
      this.set({ status: 'signed-out', reason: null });
    }
  }

  /** Signs in; throws the server's refusal (UNAUTHENTICATED for wrong credentials). */
  async signIn(email: string, password: string, host: string): Promise<Principal> {
    const pair = await this.api.login(email, password, host);
    this.accept(pair);
    return decodeAccessToken(pair.accessToken);
  }

  /** Signs out here and revokes the refresh token's family on the server (best effort). */
  async signOut(): Promise<void> {
    const token = this.store.get();
    this.store.set(null);
    this.end('signed-out');
    if (token !== null) {
      try {
        await this.api.logout(token);
      } catch {
        // The local session is gone either way; the server-side family expires on its own.
      }
    }
  }

  /**
   * An access token good for a call: the current one, or a refreshed one when it is about to
   * expire. `null` when signed out.
   */
  async accessToken(): Promise<string | null> {
    if (this.access && this.access.expiresAt - this.now() > this.margin) return this.access.token;
    if (this.state.status !== 'signed-in' && this.store.get() === null) return null;
    return this.refreshOnce();
  }

  /**
   * A call sent with `used` came back UNAUTHENTICATED: refresh (unless another call already did)
   * and return the token to retry with, or `null` when the session is over.
   */
  async handleUnauthenticated(used: string): Promise<string | null> {
    if (this.access && this.access.token !== used) return this.access.token;
    this.access = null;
    return this.refreshOnce();
  }

  private refreshOnce(): Promise<string | null> {
    this.inflight ??= this.lock(this.lockName, () => this.refreshNow()).finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async refreshNow(): Promise<string | null> {
    const stored = this.store.get();
    if (stored === null) {
      if (this.state.status === 'signed-in') this.end('expired');
      return null;
    }
    try {
      this.accept(await this.api.refresh(stored));
      return this.access?.token ?? null;
    } catch (error) {
      if (ConnectError.from(error).code === Code.Unauthenticated) {
        // Spent, revoked or expired: this session is over.
        if (this.store.get() === stored) this.store.set(null);
        this.end('expired');
        return null;
      }
      throw error;
    }
  }
}
