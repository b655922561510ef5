// `npm run bench [-- <section> ...]`: measures and writes bench/results.json,
// replacing only the sections that ran. See CONVENTIONS (Benchmarks).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { writeJsonAtomic } from '../src/node/atomic.js';
import { ADVLAB_VERSION } from '../src/report/meta.js';
import { benchEngine } from './engine.js';
import { benchAttacks } from './attacks.js';
import { benchEval } from './eval.js';
import { benchDefenses } from './defenses.js';
import { benchGan } from './gan.js';
import { benchAae } from './aae.js';
import { benchDistributed } from './distributed.js';
import { benchBrowser } from './browser.js';
import { benchCertify } from './certify.js';
import { benchAdvgan } from './advgan.js';
import { benchGenerated } from './generated.js';

/** A section's figures; `previous` is what results.json held for it (for sections that can re-run a part). */
type Section = (log: (s: string) => void, previous?: unknown) => Promise<unknown>;
const SECTIONS: Record<string, Section> = { engine: benchEngine, attacks: benchAttacks, eval: benchEval, defenses: benchDefenses, gan: benchGan, aae: benchAae, distributed: benchDistributed, browser: benchBrowser, certify: benchCertify, advgan: benchAdvgan, generated: benchGenerated };

const file = join(dirname(fileURLToPath(import.meta.url)), 'results.json');
const requested = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = requested.filter((s) => !(s in SECTIONS));
if (unknown.length) {
  console.error(`bench: unknown section ${unknown.join(', ')}; sections: ${Object.keys(SECTIONS).join(', ')}`);
  process.exit(2);
}
const results: Record<string, unknown> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
for (const name of requested.length ? requested : Object.keys(SECTIONS)) {
  console.log(`bench: ${name}`);
  results[name] = await SECTIONS[name]((s) => console.log(`  ${s}`), results[name]);
  // Merge into the file as it is now: another bench process may have written its own section meanwhile.
  const current: Record<string, unknown> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  writeJsonAtomic(file, { ...current, [name]: results[name], advlabVersion: ADVLAB_VERSION });
}
console.log(`bench: wrote ${file}`);
