// Bench sections made of long, resumable parts (certify, advgan, generated):
// each part trains into its own cache folder with resume on, and its figures
// are kept in <cache>/parts.json as soon as it ends, so a killed bench loses
// at most the part it was in. An environment variable (comma-separated part
// names, in the order to run them) runs some parts and keeps the others'
// previous figures (empty: none, only the section rewritten from the saved ones).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../src/node/atomic.js';

export type Parts = Record<string, unknown>;

/** The figures of parts finished by an earlier (possibly killed) run of the section, over those in results.json. */
export function loadParts(cache: string, previous: unknown): Parts {
  const file = join(cache, 'parts.json');
  const saved = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Parts) : {};
  return { ...((previous as { parts?: Parts } | undefined)?.parts ?? {}), ...saved };
}

/** Runs the parts `env` names (default: all, in order), saving `parts` after each. */
export async function runParts(cache: string, env: string, runners: Record<string, () => Promise<void>>, parts: Parts, log: (s: string) => void): Promise<void> {
  const wanted = process.env[env]?.split(',').map((s) => s.trim()).filter(Boolean) ?? Object.keys(runners);
  const unknown = wanted.filter((w) => !(w in runners));
  if (unknown.length) throw new Error(`${env}: unknown part ${unknown.join(', ')}; parts: ${Object.keys(runners).join(', ')}`);
  for (const name of wanted) {
    await runners[name]();
    log(`${name}: ${JSON.stringify(parts[name])}`);
    mkdirSync(cache, { recursive: true });
    writeJsonAtomic(join(cache, 'parts.json'), parts);
  }
}
