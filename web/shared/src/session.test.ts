import { describe, expect, it } from 'vitest';
import { Code, ConnectError } from '@connectrpc/connect';
import { Session, type AuthApi, type RefreshStore, type TokenPairLike } from './session';

/** A token whose claims the session can read. */
function jwt(sub: string, n: number): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'EdDSA' })}.${enc({ sub, org: 'org-1', kind: 'staff', org_role: 'member', brands: { b1: 'agent' }, exp: 2_000_000_000, n })}.sig`;
}

/** An AuthService stand-in that rotates refresh tokens like Tenancy: each works once. */
class FakeAuth implements AuthApi {
  refreshCalls = 0;
  logouts: string[] = [];
  valid = new Set<string>();
  private n = 0;
  failWith: Code | null = null;
  gate: Promise<void> = Promise.resolve();

  private pair(): TokenPairLike {
    this.n += 1;
    const refreshToken = `r${this.n}`;
    this.valid.add(refreshToken);
    return { accessToken: jwt('user-1', this.n), expiresIn: 900n, refreshToken };
  }
  async login(email: string, password: string): Promise<TokenPairLike> {
    if (password !== 'right') throw new ConnectError('invalid credentials', Code.Unauthenticated);
    return this.pair();
  }
  async refresh(token: string): Promise<TokenPairLike> {
    this.refreshCalls += 1;
    await this.gate;
    if (this.failWith !== null) throw new ConnectError('refused', this.failWith);
    if (!this.valid.delete(token)) throw new ConnectError('spent', Code.Unauthenticated);
    return this.pair();
  }
  async logout(token: string): Promise<void> {
    this.logouts.push(token);
  }
}

function memoryStore(initial: string | null = null): RefreshStore & { value: string | null } {
  return {
    value: initial,
    get() {
      return this.value;
    },
    set(token) {
      this.value = token;
    },
  };
}

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('Session', () => {
  it('signs in, keeps the access token in memory and the refresh token in the store', async () => {
    const auth = new FakeAuth();
    const store = memoryStore();
    const session = new Session(auth, store);
    const principal = await session.signIn('a@x.example', 'right', 'app.x.localhost');
    expect(principal.userId).toBe('user-1');
    expect(principal.brands).toEqual({ b1: 'agent' });
    expect(session.getState().status).toBe('signed-in');
    expect(store.value).toBe('r1');
    expect(await session.accessToken()).toBe(jwt('user-1', 1));
    expect(auth.refreshCalls).toBe(0);
  });

  it('refuses wrong credentials without changing state', async () => {
    const session = new Session(new FakeAuth(), memoryStore());
    await session.restore();
    await expect(session.signIn('a@x.example', 'wrong', 'h')).rejects.toMatchObject({ code: Code.Unauthenticated });
    expect(session.getState()).toEqual({ status: 'signed-out', reason: null });
  });

  it('refreshes once for many calls that find the token about to expire', async () => {
    const auth = new FakeAuth();
    const time = clock();
    const store = memoryStore();
    const session = new Session(auth, store, { now: time.now });
    await session.signIn('a@x.example', 'right', 'h');
    time.advance(850_000); // 50 s left, under the 60 s margin
    let open!: () => void;
    auth.gate = new Promise((resolve) => (open = resolve));
    const calls = Array.from({ length: 20 }, () => session.accessToken());
    open();
    const tokens = await Promise.all(calls);
    expect(auth.refreshCalls).toBe(1);
    expect(new Set(tokens)).toEqual(new Set([jwt('user-1', 2)]));
    expect(store.value).toBe('r2');
    expect(auth.valid.has('r1')).toBe(false);
  });

  it('after UNAUTHENTICATED, refreshes once and hands every failed call the new token', async () => {
    const auth = new FakeAuth();
    const session = new Session(auth, memoryStore());
    await session.signIn('a@x.example', 'right', 'h');
    const used = (await session.accessToken())!;
    const retries = await Promise.all([1, 2, 3].map(() => session.handleUnauthenticated(used)));
    expect(auth.refreshCalls).toBe(1);
    expect(new Set(retries)).toEqual(new Set([jwt('user-1', 2)]));
    // A late failure of a call sent with the old token does not refresh again.
    expect(await session.handleUnauthenticated(used)).toBe(jwt('user-1', 2));
    expect(auth.refreshCalls).toBe(1);
  });

  it('ends the session as expired when the server refuses the refresh token', async () => {
    const auth = new FakeAuth();
    const store = memoryStore();
    const session = new Session(auth, store);
    await session.signIn('a@x.example', 'right', 'h');
    auth.valid.clear(); // revoked (e.g. the family was revoked after a reuse)
    expect(await session.handleUnauthenticated((await session.accessToken())!)).toBeNull();
    expect(session.getState()).toEqual({ status: 'signed-out', reason: 'expired' });
    expect(store.value).toBeNull();
    expect(await session.accessToken()).toBeNull();
  });

  it('keeps the session when the refresh fails for a network reason', async () => {
    const auth = new FakeAuth();
    const time = clock();
    const store = memoryStore();
    const session = new Session(auth, store, { now: time.now });
    await session.signIn('a@x.example', 'right', 'h');
    time.advance(899_000);
    auth.failWith = Code.Unavailable;
    await expect(session.accessToken()).rejects.toMatchObject({ code: Code.Unavailable });
    expect(session.getState().status).toBe('signed-in');
    expect(store.value).toBe('r1');
    auth.failWith = null;
    expect(await session.accessToken()).toBe(jwt('user-1', 2));
  });

  it('resumes a stored session on restore, and forgets a dead one quietly', async () => {
    const auth = new FakeAuth();
    await auth.login('a', 'right'); // issues r1
    const live = new Session(auth, memoryStore('r1'));
    await live.restore();
    expect(live.getState().status).toBe('signed-in');

    const deadStore = memoryStore('r-unknown');
    const dead = new Session(auth, deadStore);
    await dead.restore();
    expect(dead.getState()).toEqual({ status: 'signed-out', reason: null });
    expect(deadStore.value).toBeNull();
  });

  it('serializes refreshes across tabs through the lock and re-reads the stored token', async () => {
    const auth = new FakeAuth();
    const shared = memoryStore();
    let chain = Promise.resolve<unknown>(undefined);
    const lock = <T>(_name: string, task: () => Promise<T>): Promise<T> => {
      const run = chain.then(task);
      chain = run.catch(() => undefined);
      return run;
    };
    const time = clock();
    const tabA = new Session(auth, shared, { lock, now: time.now });
    await tabA.signIn('a@x.example', 'right', 'h');
    const tabB = new Session(auth, shared, { lock, now: time.now });
    await tabB.restore(); // spends r1, stores r2
    time.advance(880_000);
    const [a, b] = await Promise.all([tabA.accessToken(), tabB.accessToken()]);
    expect(a).not.toBeNull();
    expect(b).not.toBeNull();
    // No refresh token was presented twice (a reuse would have been refused as UNAUTHENTICATED).
    expect(tabA.getState().status).toBe('signed-in');
    expect(tabB.getState().status).toBe('signed-in');
    expect(auth.refreshCalls).toBe(3);
  });

  it('signs out: revokes on the server, clears the store, reports signed-out', async () => {
    const auth = new FakeAuth();
    const store = memoryStore();
    const session = new Session(auth, store);
    await session.signIn('a@x.example', 'right', 'h');
    await session.signOut();
    expect(auth.logouts).toEqual(['r1']);
    expect(store.value).toBeNull();
    expect(session.getState()).toEqual({ status: 'signed-out', reason: 'signed-out' });
  });
});
