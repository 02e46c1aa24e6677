/**
 * Starts the whole mesh once for the browser suite: `sentra-mesh` (every service in one process on
 * free ports, a fresh database, its own Redis prefix and broker names, the real Envoy in front)
 * serving the built apps. Tests get its URL through `inject('meshUrl')` and each signs up its own
 * organization, so they never share data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    meshUrl: string;
    /** The mesh's fake Google (OAuth + Gmail), with its `/_fake/` control API. */
    gmailUrl: string;
    shotsDir: string;
  }
}

const repo = new URL('../..', import.meta.url).pathname;
let mesh: ChildProcess | undefined;

export async function setup(project: TestProject) {
  const bin = process.env.SENTRA_MESH_BIN ?? join(repo, 'target/debug/sentra-mesh');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`cargo build -p sentra-mesh\` (make test does)`);
  for (const app of ['dashboard', 'portal']) {
    if (!existsSync(join(repo, 'web', app, 'dist/index.html'))) throw new Error(`web/${app} is not built: run \`npm run build\``);
  }
  const shotsDir = join(repo, 'target/screenshots');
  mkdirSync(shotsDir, { recursive: true });
  mesh = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' } });
  const ready = await new Promise<{ url: string; gmail: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('sentra-mesh did not start within 120 s')), 120_000);
    mesh!.once('exit', (code) => reject(new Error(`sentra-mesh exited with ${code}`)));
    createInterface({ input: mesh!.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      clearTimeout(timer);
      resolve(JSON.parse(line));
    });
  });
  project.provide('meshUrl', ready.url);
  project.provide('gmailUrl', ready.gmail);
  project.provide('shotsDir', shotsDir);
}

export async function teardown() {
  if (!mesh) return;
  const exited = new Promise((resolve) => mesh!.once('exit', resolve));
  mesh.stdin?.end(); // the mesh stops and drops its database when its input closes
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000).unref())]);
  if (mesh.exitCode === null) mesh.kill('SIGKILL');
}
