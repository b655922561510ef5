// `node --import tsx scripts/certify-figure.ts`: docs/images/certified-accuracy.svg, the
// README's figure: certified accuracy against the L2 radius of the noise-trained
// small-cnns of `npm run bench -- certify` (bench/.cache/certify/noise-<sigma>/certify),
// one step curve per sigma, with the published Gaussian-augmentation figures
// (LeNet, 60k images, n = 100,000) as diamonds of the same colour.
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { certifiedCurvesPlot } from '../src/report/plots.js';
import { writeFileAtomic } from '../src/node/atomic.js';
import type { CertifyRunResult } from '../src/jobs/certify-run.js';

const root = join(import.meta.dirname, '..');
const PUBLISHED: Record<string, number[]> = { '0.25': [99.2, 96.7, 0, 0, 0], '0.5': [99.2, 96.9, 89.8, 67.8, 0], '1': [96.3, 91.4, 79.9, 59.5, 32.5] };
const series: { name: string; curve: { radius: number; accuracy: number }[] }[] = [];
const anchors: { name: string; radius: number; accuracy: number }[] = [];
for (const sigma of ['0.25', '0.5', '1']) {
  const file = join(root, 'bench', '.cache', 'certify', `noise-${sigma}`, 'certify', 'result.json');
  if (!existsSync(file)) continue;
  const r = JSON.parse(readFileSync(file, 'utf8')) as CertifyRunResult;
  const name = `σ = ${sigma} (n = ${r.options.samples}, ${r.count} images)`;
  series.push({ name, curve: r.curve });
  PUBLISHED[sigma].forEach((a, i) => anchors.push({ name, radius: i * 0.5, accuracy: a / 100 }));
}
if (!series.length) throw new Error('no certify results in bench/.cache/certify: run npm run bench -- certify first');
mkdirSync(join(root, 'docs', 'images'), { recursive: true });
writeFileAtomic(join(root, 'docs', 'images', 'certified-accuracy.svg'), await certifiedCurvesPlot(series, anchors));
console.log(`docs/images/certified-accuracy.svg: ${series.map((s) => s.name).join(', ')}`);
