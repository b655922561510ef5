// `node --import tsx scripts/certify-figure.ts`: docs/images/certified-accuracy.svg, the
// README's figure: certified accuracy against the L2 radius of the noise-trained
// small-cnns of `npm run bench -- certify` (the curves in bench/results.json,
// else bench/.cache/certify/noise-<sigma>/certify/result.json),
// one step curve per sigma (and the consistency-trained sigma 0.5), with the published
// Gaussian-augmentation figures (LeNet, 60k images, n = 100,000) as diamonds.
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { certifiedCurvesPlot } from '../src/report/plots.js';
import { writeFileAtomic } from '../src/node/atomic.js';
import type { CertifyRunResult } from '../src/jobs/certify-run.js';

const root = join(import.meta.dirname, '..');
const PUBLISHED: Record<string, number[]> = { '0.25': [99.2, 96.7, 0, 0, 0], '0.5': [99.2, 96.9, 89.8, 67.8, 0], '1': [96.3, 91.4, 79.9, 59.5, 32.5] };
const series: { name: string; curve: { radius: number; accuracy: number }[] }[] = [];
const anchors: { name: string; radius: number; accuracy: number }[] = [];
const counts: string[] = [];
type Part = { images: number; samples: number; curve?: [number, number][] };
const results = JSON.parse(readFileSync(join(root, 'bench', 'results.json'), 'utf8')) as { certify?: { parts?: Record<string, Part> } };
// The noise-trained models, then the consistency-trained one (anchored to the same published noise figures at its sigma).
const RUNS = [
  ...['0.25', '0.5', '1'].map((sigma) => ({ sigma, part: `smoothing-${sigma}`, dir: `noise-${sigma}`, label: '' })),
  { sigma: '0.5', part: 'consistency-0.5', dir: 'consistency-0.5', label: ', consistency' },
];
for (const { sigma, part: partName, dir, label } of RUNS) {
  const part = results.certify?.parts?.[partName];
  const file = join(root, 'bench', '.cache', 'certify', dir, 'certify', 'result.json');
  let found: { samples: number; count: number; curve: { radius: number; accuracy: number }[] } | null = null;
  if (part?.curve) found = { samples: part.samples, count: part.images, curve: part.curve.map(([radius, accuracy]) => ({ radius, accuracy })) };
  else if (existsSync(file)) {
    const r = JSON.parse(readFileSync(file, 'utf8')) as CertifyRunResult;
    found = { samples: r.options.samples, count: r.count, curve: r.curve };
  }
  if (!found) continue;
  // Short names: the legend truncates long ones; n and the image count go to the caption (printed below).
  const name = `σ = ${sigma}${label}`;
  counts.push(`${name}: n = ${found.samples}, ${found.count} images`);
  series.push({ name, curve: found.curve });
  if (!label) PUBLISHED[sigma].forEach((a, i) => anchors.push({ name, radius: i * 0.5, accuracy: a / 100 }));
}
if (!series.length) throw new Error('no certify curves in bench/results.json or bench/.cache/certify: run npm run bench -- certify first');
mkdirSync(join(root, 'docs', 'images'), { recursive: true });
writeFileAtomic(join(root, 'docs', 'images', 'certified-accuracy.svg'), await certifiedCurvesPlot(series, anchors));
console.log(`docs/images/certified-accuracy.svg: ${counts.join('; ')}`);
