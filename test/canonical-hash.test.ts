// Job ids and model blob names come from canonicalHash: equal values must hash
// equal in any process, whatever V8's in-memory form of a number (a resumed
// distributed run finds its finished jobs by these ids).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serialize } from 'node:v8';
import { canonicalHash } from '../src/node/distributed/canonical-hash.js';
import { contentHash, modelBlob } from '../src/node/distributed/wire.js';
import { shareModel } from '../src/models/pool-model.js';
import { buildModel } from '../src/models/zoo.js';
import { initBackend } from '../src/node/backend.js';

/** 1 as V8 holds a computed double (a heap number), not a small integer. */
const half = Number('0.5');
const computedOne = half * 2;

test('equal values hash equal even where v8.serialize writes different bytes', () => {
  const a = { eps: 1, shape: [28, 28, 1] };
  const b = { eps: computedOne, shape: [28 * computedOne, 28, 1] };
  assert.notDeepEqual(serialize(a), serialize(b), 'V8 writes an int32 and a double for the same number');
  assert.equal(canonicalHash(a), canonicalHash(b));
  assert.equal(contentHash('task', a), contentHash('task', b));
  // Key order does not matter; values, types and the task do.
  assert.equal(canonicalHash({ x: 1, y: 'a' }), canonicalHash({ y: 'a', x: 1 }));
  assert.notEqual(canonicalHash({ x: 1 }), canonicalHash({ x: '1' }));
  assert.notEqual(canonicalHash({ x: 1 }), canonicalHash({ x: 2 }));
  assert.notEqual(canonicalHash([1, 2]), canonicalHash([[1, 2]]));
  assert.notEqual(canonicalHash(['ab', 'c']), canonicalHash(['a', 'bc']));
  assert.notEqual(canonicalHash(null), canonicalHash(undefined));
  assert.notEqual(contentHash('a', {}), contentHash('b', {}));
  assert.equal(canonicalHash(NaN), canonicalHash(new Float64Array(new Uint32Array([1, 0x7ff80000]).buffer)[0]));
  assert.equal(canonicalHash(Infinity), canonicalHash(1 / 0));
});

test('typed arrays hash by element type and the bytes of the view', () => {
  const f = Float32Array.of(1, 2, 3);
  const big = Float32Array.of(9, 1, 2, 3, 9);
  assert.equal(canonicalHash(f), canonicalHash(big.subarray(1, 4)));
  assert.notEqual(canonicalHash(f), canonicalHash(Int32Array.of(1, 2, 3)));
  assert.notEqual(canonicalHash(f), canonicalHash(Float32Array.of(1, 2, 4)));
  // A Node Buffer is a Uint8Array (and deserializes as one).
  assert.equal(canonicalHash(Buffer.from([1, 2])), canonicalHash(Uint8Array.of(1, 2)));
});

test('what is not plain data is refused with its path', () => {
  assert.throws(() => canonicalHash({ a: [1, { f: () => 0 }] }), /cannot hash \[0\]\.a\[1\]\.f: \[object Function\]/);
  assert.throws(() => canonicalHash({ m: new Map() }), /\.m: \[object Map\] is not plain data/);
});

test("a model's blob name does not depend on how V8 holds its topology's numbers", async () => {
  await initBackend({ backend: 'cpu' });
  const model = buildModel('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 0 });
  try {
    const shared = await shareModel(model);
    const topology = JSON.parse(JSON.stringify(shared.artifacts.modelTopology));
    // The same topology with every number recomputed as a double.
    const doubled = JSON.parse(JSON.stringify(topology), (_k, v) => (typeof v === 'number' ? v * computedOne : v));
    const a = modelBlob({ ...shared, artifacts: { ...shared.artifacts, modelTopology: topology } });
    const b = modelBlob({ ...shared, artifacts: { ...shared.artifacts, modelTopology: doubled } });
    assert.ok(!a.blob.equals(b.blob), 'the serialized bytes differ');
    assert.equal(a.hash, b.hash);
  } finally {
    model.dispose();
  }
});
