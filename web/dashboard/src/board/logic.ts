/**
 * The pipeline board's rules, kept free of React so they can be tested alone: what a drop means
 * (a stage change, a conversion, a loss, or a move the pipeline does not allow), and the move
 * itself with the etag the card was drawn from.
 */
import { Code, ConnectError } from '@connectrpc/connect';
import { LeadStage, type Lead } from '@sentra/shared/gen/sentra/sales/v1/resources_pb';
import { toProblem, type Problem } from '@sentra/shared/errors';
import { STAGE_LABEL } from '@sentra/shared/labels';

export type Move =
  | { kind: 'none' }
  | { kind: 'change-stage'; to: LeadStage }
  | { kind: 'convert' }
  | { kind: 'mark-lost' }
  | { kind: 'illegal'; reason: string };

const OPEN = new Set([LeadStage.NEW, LeadStage.CONTACTED, LeadStage.QUALIFIED, LeadStage.PROPOSAL, LeadStage.NEGOTIATION]);
const WINNABLE = new Set([LeadStage.QUALIFIED, LeadStage.PROPOSAL, LeadStage.NEGOTIATION]);

/**
 * What dropping a lead from `from` onto `to` asks for, by the pipeline's rules: one step
 * forward or any number back among the open stages (never back to New); Won by conversion from
 * Qualified or later; Lost from any open stage. The server checks the same rules.
 */
export function planMove(from: LeadStage, to: LeadStage): Move {
  if (from === to) return { kind: 'none' };
  if (!OPEN.has(from)) {
    return { kind: 'illegal', reason: `${STAGE_LABEL[from]} leads are closed; reopen the lead from its page first.` };
  }
  if (to === LeadStage.WON) {
    return WINNABLE.has(from)
      ? { kind: 'convert' }
      : { kind: 'illegal', reason: 'Only qualified leads (or later) can be won.' };
  }
  if (to === LeadStage.LOST) return { kind: 'mark-lost' };
  if (to === LeadStage.NEW) return { kind: 'illegal', reason: 'A lead cannot go back to New.' };
  if (to > from + 1) return { kind: 'illegal', reason: 'Leads move forward one stage at a time.' };
  return { kind: 'change-stage', to };
}

/** The two Sales calls a move needs (the generated client has them). */
export interface MoveApi {
  changeLeadStage(request: { leadId: string; stage: LeadStage; etag: string }): Promise<{ lead?: Lead }>;
  getLead(request: { leadId: string }): Promise<{ lead?: Lead }>;
}

export type MoveOutcome =
  | { ok: true; lead: Lead }
  /** Someone changed the lead since the card was drawn; `fresh` is how it stands now. */
  | { ok: false; conflict: true; fresh: Lead | null; problem: Problem }
  | { ok: false; conflict: false; problem: Problem };

/**
 * Moves `lead` to `to`, sending the etag it was drawn with. A stale etag (ABORTED) fetches the
 * lead as it stands, so the board can show it instead of the card's old picture.
 */
export async function moveLead(api: MoveApi, lead: Lead, to: LeadStage): Promise<MoveOutcome> {
  try {
    const { lead: moved } = await api.changeLeadStage({ leadId: lead.id, stage: to, etag: lead.etag });
    if (!moved) throw new ConnectError('the answer carried no lead', Code.Internal);
    return { ok: true, lead: moved };
  } catch (error) {
    const problem = toProblem(error);
    if (problem.code !== Code.Aborted) return { ok: false, conflict: false, problem };
    let fresh: Lead | null = null;
    try {
      fresh = (await api.getLead({ leadId: lead.id })).lead ?? null;
    } catch {
      // The conflict is still the news; the board refetches its columns anyway.
    }
    return { ok: false, conflict: true, fresh, problem };
  }
}

/** A lead's version, from its etag (`"7"`). */
export function version(lead: Lead): number {
  return Number(lead.etag.replaceAll('"', '')) || 0;
}

/**
 * The board's columns: the leads of the queries, with local pictures (`overrides`: a card being
 * moved, or as the server answered a move) drawn in place of fetched ones that are not newer,
 * grouped by stage and sorted newest first. The lists come from a projection that may lag a
 * moment behind a write, so a refetch right after a move can still hold the lead's old version;
 * the local picture stays until the fetched one has caught up, and the card does not jump back.
 */
export function arrangeColumns(fetched: Lead[], overrides: ReadonlyMap<string, Lead>, stages: readonly LeadStage[]) {
  const byId = new Map<string, Lead>();
  for (const lead of fetched) byId.set(lead.id, lead);
  for (const [id, lead] of overrides) {
    const current = byId.get(id);
    if (!current || version(lead) >= version(current)) byId.set(id, lead);
  }
  const columns = new Map<LeadStage, Lead[]>(stages.map((s) => [s, []]));
  for (const lead of byId.values()) columns.get(lead.stage)?.push(lead);
  const created = (l: Lead) => (l.createTime ? Number(l.createTime.seconds) * 1e3 + l.createTime.nanos / 1e6 : 0);
  for (const list of columns.values()) list.sort((a, b) => created(b) - created(a) || a.id.localeCompare(b.id));
  return columns;
}

/** What the board lists: the same filters `ListLeads` applies, empty meaning "any". */
export interface BoardFilters {
  brandId: string;
  assigneeId: string;
  query: string;
}

/**
 * Whether `lead` belongs on a board with `filters`, by the rules `ListLeads` uses (brand and
 * assignee exact, the query a case-insensitive substring of name, email or company), so a live
 * change can be drawn at once instead of waiting for a refetch.
 */
export function matchesFilters(lead: Lead, filters: BoardFilters): boolean {
  if (filters.brandId && lead.brandId !== filters.brandId) return false;
  if (filters.assigneeId && lead.assigneeId !== filters.assigneeId) return false;
  const query = filters.query.trim().toLowerCase();
  if (!query) return true;
  return [lead.contactName, lead.email, lead.company].some((field) => field.toLowerCase().includes(query));
}
