import { describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import { LeadSchema, LeadStage, type Lead } from '@sentra/shared/gen/sentra/sales/v1/resources_pb';
import { arrangeColumns, matchesFilters, moveLead, planMove, type MoveApi } from './logic';

const S = LeadStage;

function lead(id: string, stage: LeadStage, etag: string, created = 0): Lead {
  return create(LeadSchema, { id, stage, etag, contactName: id, createTime: timestampFromMs(created) });
}

describe('planMove', () => {
  it('follows the pipeline rules', () => {
    expect(planMove(S.NEW, S.CONTACTED)).toEqual({ kind: 'change-stage', to: S.CONTACTED });
    expect(planMove(S.NEGOTIATION, S.CONTACTED)).toEqual({ kind: 'change-stage', to: S.CONTACTED });
    expect(planMove(S.QUALIFIED, S.QUALIFIED)).toEqual({ kind: 'none' });
    expect(planMove(S.NEW, S.QUALIFIED).kind).toBe('illegal');
    expect(planMove(S.CONTACTED, S.NEW).kind).toBe('illegal');
    expect(planMove(S.QUALIFIED, S.WON)).toEqual({ kind: 'convert' });
    expect(planMove(S.NEGOTIATION, S.WON)).toEqual({ kind: 'convert' });
    expect(planMove(S.CONTACTED, S.WON).kind).toBe('illegal');
    expect(planMove(S.NEW, S.LOST)).toEqual({ kind: 'mark-lost' });
    expect(planMove(S.WON, S.NEGOTIATION).kind).toBe('illegal');
    expect(planMove(S.LOST, S.NEW).kind).toBe('illegal');
  });
});

/** A Sales stand-in holding one lead with a version, refusing stale etags like the service. */
class FakeSales implements MoveApi {
  sent: { leadId: string; stage: LeadStage; etag: string }[] = [];
  gets = 0;
  failWith: Code | null = null;
  constructor(public current: Lead) {}
  async changeLeadStage(request: { leadId: string; stage: LeadStage; etag: string }) {
    this.sent.push(request);
    if (this.failWith !== null) throw new ConnectError('refused', this.failWith);
    if (request.etag !== this.current.etag) throw new ConnectError('etag mismatch', Code.Aborted);
    this.current = lead(this.current.id, request.stage, String(Number(this.current.etag) + 1));
    return { lead: this.current };
  }
  async getLead() {
    this.gets += 1;
    return { lead: this.current };
  }
}

describe('moveLead', () => {
  it('sends the etag the card was drawn with and returns the moved lead', async () => {
    const api = new FakeSales(lead('l1', S.NEW, '3'));
    const outcome = await moveLead(api, lead('l1', S.NEW, '3'), S.CONTACTED);
    expect(api.sent).toEqual([{ leadId: 'l1', stage: S.CONTACTED, etag: '3' }]);
    expect(outcome).toMatchObject({ ok: true, lead: { stage: S.CONTACTED, etag: '4' } });
  });

  it('on a stale etag, reports the conflict with the lead as it stands now', async () => {
    const api = new FakeSales(lead('l1', S.QUALIFIED, '5'));
    const outcome = await moveLead(api, lead('l1', S.NEW, '3'), S.CONTACTED);
    expect(outcome.ok).toBe(false);
    if (outcome.ok || !outcome.conflict) throw new Error('expected a conflict');
    expect(outcome.fresh).toMatchObject({ stage: S.QUALIFIED, etag: '5' });
    expect(outcome.problem.code).toBe(Code.Aborted);
    expect(api.gets).toBe(1);
  });

  it('passes other refusals through without refetching', async () => {
    const api = new FakeSales(lead('l1', S.NEW, '3'));
    api.failWith = Code.PermissionDenied;
    const outcome = await moveLead(api, lead('l1', S.NEW, '3'), S.CONTACTED);
    expect(outcome).toMatchObject({ ok: false, conflict: false, problem: { code: Code.PermissionDenied } });
    expect(api.gets).toBe(0);
  });
});

describe('arrangeColumns', () => {
  it('draws overrides in place of fetched leads and sorts newest first', () => {
    const fetched = [lead('a', S.NEW, '1', 1000), lead('b', S.NEW, '1', 2000), lead('c', S.CONTACTED, '1', 500)];
    const overrides = new Map([['a', lead('a', S.CONTACTED, '2', 1000)]]);
    const columns = arrangeColumns(fetched, overrides, [S.NEW, S.CONTACTED]);
    expect(columns.get(S.NEW)!.map((l) => l.id)).toEqual(['b']);
    expect(columns.get(S.CONTACTED)!.map((l) => l.id)).toEqual(['a', 'c']);
  });

  it('keeps a moved card in place while the fetched lists lag, and lets newer fetched data win', () => {
    const moved = new Map([['a', lead('a', S.CONTACTED, '"2"')]]);
    const lagging = arrangeColumns([lead('a', S.NEW, '"1"')], moved, [S.NEW, S.CONTACTED]);
    expect(lagging.get(S.CONTACTED)!.map((l) => l.id)).toEqual(['a']);
    expect(lagging.get(S.NEW)).toEqual([]);
    const later = arrangeColumns([lead('a', S.QUALIFIED, '"3"')], moved, [S.NEW, S.CONTACTED, S.QUALIFIED]);
    expect(later.get(S.QUALIFIED)!.map((l) => l.id)).toEqual(['a']);
    expect(later.get(S.CONTACTED)).toEqual([]);
  });
});

describe('matchesFilters', () => {
  const card = create(LeadSchema, {
    id: 'l1',
    brandId: 'b1',
    assigneeId: 'u1',
    contactName: 'Zoë Ångström',
    email: 'zoe@fjord.example',
    company: 'Fjord AB',
  });
  const none = { brandId: '', assigneeId: '', query: '' };

  it('keeps every lead without filters', () => {
    expect(matchesFilters(card, none)).toBe(true);
  });

  it('filters by brand and assignee exactly', () => {
    expect(matchesFilters(card, { ...none, brandId: 'b1' })).toBe(true);
    expect(matchesFilters(card, { ...none, brandId: 'b2' })).toBe(false);
    expect(matchesFilters(card, { ...none, assigneeId: 'u1' })).toBe(true);
    expect(matchesFilters(card, { ...none, assigneeId: 'u2' })).toBe(false);
  });

  it('finds the query in the name, email or company, ignoring case', () => {
    expect(matchesFilters(card, { ...none, query: 'ÅNGSTRÖM' })).toBe(true);
    expect(matchesFilters(card, { ...none, query: 'fjord.example' })).toBe(true);
    expect(matchesFilters(card, { ...none, query: ' fjord ab ' })).toBe(true);
    expect(matchesFilters(card, { ...none, query: 'acme' })).toBe(false);
  });
});
