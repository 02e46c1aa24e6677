/**
 * `make bench`: the pipeline board with 500 leads (100 in each open stage) in real Chromium.
 * Reports how long the board takes to show every card, the main thread's long tasks meanwhile,
 * and how long a dragged card takes to land in its new column (the optimistic move) and to be
 * confirmed by the server. Written to target/bench/web.md and web.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import { agency, api, brandUrl, card, context, drag, launch, signIn, type Agency } from '../support';
import { LeadStage } from '../../shared/src/gen/sentra/sales/v1/resources_pb';

const PER_STAGE = 100;
const STAGES = [LeadStage.NEW, LeadStage.CONTACTED, LeadStage.QUALIFIED, LeadStage.PROPOSAL, LeadStage.NEGOTIATION];
const ROUNDS = 5;

let browser: Browser;
let a: Agency;

/** Runs `tasks` with at most `width` in flight. */
async function pool<T>(tasks: (() => Promise<T>)[], width: number): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]!();
      }
    }),
  );
  return out;
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)]!;
}

beforeAll(async () => {
  browser = await launch();
  a = await agency('Bench', '#1864ab');
  const s = api(a.ownerToken).sales;
  const tasks = STAGES.flatMap((target, stageIndex) =>
    Array.from({ length: PER_STAGE }, (_, i) => async () => {
      let lead = (
        await s.createLead({
          lead: {
            brandId: a.brandId,
            contactName: `Lead ${stageIndex}-${String(i).padStart(3, "0")}`,
            company: `Company ${i}`,
            estimatedValue: { currencyCode: 'EUR', amountMinor: BigInt(10_000 + i * 100) },
          },
        })
      ).lead!;
      for (let stage = LeadStage.CONTACTED; stage <= target; stage += 1) {
        lead = (await s.changeLeadStage({ leadId: lead.id, stage, etag: lead.etag })).lead!;
      }
    }),
  );
  await pool(tasks, 16);
});
afterAll(async () => browser?.close());

test('the board with 500 leads', async () => {
  const page = await (await context(browser, 1920, 1080)).newPage();
  await signIn(page, brandUrl(a, '/app/'), a.manager.email);
  await page.getByRole('heading', { name: 'Pipeline overview' }).waitFor();
  const total = PER_STAGE * STAGES.length;

  const renders: number[] = [];
  const longTasks: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    await page.goto(brandUrl(a, '/app/'));
    await page.getByRole('heading', { name: 'Pipeline overview' }).waitFor();
    await page.evaluate(() => {
      const w = window as unknown as { __long: number };
      w.__long = 0;
      new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) w.__long += entry.duration;
      }).observe({ type: 'longtask', buffered: false });
    });
    const started = Date.now();
    await page.getByRole('link', { name: 'Pipeline' }).click();
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="lead-card"]').length >= n, total, { timeout: 60_000 });
    renders.push(Date.now() - started);
    longTasks.push(await page.evaluate(() => (window as unknown as { __long: number }).__long));
  }
  expect(await page.getByTestId('lead-card').count()).toBe(total);

  const gesture: number[] = [];
  const gestureLongTasks: number[] = [];
  const landed: number[] = [];
  const confirmed: number[] = [];
  for (let i = 0; i < ROUNDS; i += 1) {
    const name = `Lead 0-${String(i).padStart(3, '0')}`;
    await card(page, name).scrollIntoViewIfNeeded();
    await page.evaluate(() => {
      (window as unknown as { __long: number }).__long = 0;
    });
    const answer = page.waitForResponse((r) => r.url().includes('ChangeLeadStage'), { timeout: 30_000 });
    const start = Date.now();
    await drag(page, name, 'Contacted');
    const dropped = Date.now();
    gesture.push(dropped - start);
    await page.waitForFunction((n) => {
      const el = [...document.querySelectorAll('[data-testid="lead-card"]')].find((c) => c.textContent?.includes(n));
      return el?.getAttribute('data-stage') === 'Contacted';
    }, name);
    landed.push(Date.now() - dropped);
    await answer;
    confirmed.push(Date.now() - dropped);
    gestureLongTasks.push(await page.evaluate(() => (window as unknown as { __long: number }).__long));
  }

  const figures = {
    leads: total,
    render_ms_median: median(renders),
    render_ms: renders,
    long_tasks_ms_median: median(longTasks),
    drag_gesture_ms_median: median(gesture),
    drag_long_tasks_ms_median: median(gestureLongTasks),
    move_landed_ms_median: median(landed),
    move_confirmed_ms_median: median(confirmed),
  };
  const dir = join(new URL('../../..', import.meta.url).pathname, 'target/bench');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'web.json'), `${JSON.stringify(figures, null, 2)}\n`);
  const md = [
    '# Web: the pipeline board with 500 leads (Chromium, 1920x1080, dev mesh)',
    '',
    '| measure | median | runs |',
    '| --- | --- | --- |',
    `| navigation to all ${total} cards shown | ${figures.render_ms_median} ms | ${renders.join(', ')} |`,
    `| main-thread long tasks meanwhile | ${Math.round(figures.long_tasks_ms_median)} ms | ${longTasks.map(Math.round).join(', ')} |`,
    `| drag gesture (22 pointer moves) | ${figures.drag_gesture_ms_median} ms | ${gesture.join(', ')} |`,
    `| main-thread long tasks during a drag and its drop | ${Math.round(figures.drag_long_tasks_ms_median)} ms | ${gestureLongTasks.map(Math.round).join(', ')} |`,
    `| drop to card shown in its new column | ${figures.move_landed_ms_median} ms | ${landed.join(', ')} |`,
    `| drop to the server's answer (ChangeLeadStage) | ${figures.move_confirmed_ms_median} ms | ${confirmed.join(', ')} |`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'web.md'), md);
  console.log(md);
});
