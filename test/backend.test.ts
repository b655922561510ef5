import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, wasmDir } from '../src/node/backend.js';
import { parseBackendName } from '../src/engine/backend.js';
import { tf } from '../src/engine/tf.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const absentNode = () => Promise.reject(new Error("Cannot find package '@tensorflow/tfjs-node'"));

test('auto picks wasm when tfjs-node is absent, and records why', async () => {
  const info = await initBackend({ backend: 'auto', loadNode: absentNode });
  assert.equal(info.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.equal(info.threads, 1);
  assert.equal(info.kernels, 'advlab');
  assert.match(info.notes.join(), /tfjs-node is not installed/);
});

test('auto tries the real tfjs-node import first (absent on this machine)', async () => {
  const info = await initBackend({});
  assert.notEqual(info.name, 'cpu');
  if (info.name === 'wasm') assert.match(info.notes.join(), /tfjs-node/);
});

test('tfjs-node path: a loader that registers a backend is used', async () => {
  // Stand-in for @tensorflow/tfjs-node: registering a backend named "tensorflow" is all it does on import.
  const cpuFactory = tf.findBackendFactory('cpu')!;
  const fakeNode = async () => {
    if (!tf.findBackend('tensorflow')) tf.registerBackend('tensorflow', cpuFactory, 0);
  };
  const info = await initBackend({ backend: 'node', loadNode: fakeNode });
  assert.equal(info.name, 'node');
  assert.equal(info.tfjsName, 'tensorflow');
  assert.equal(info.kernels, 'native');
  tf.removeBackend('tensorflow');
  await initBackend({ backend: 'wasm' });
});

test('an explicit backend that cannot start is an error naming the fix', async () => {
  await assert.rejects(initBackend({ backend: 'node', loadNode: absentNode }), /backend "node" requested but unavailable.*npm install @tensorflow\/tfjs-node/);
});

test('ADVLAB_BACKEND overrides auto; --backend overrides the variable', async () => {
  process.env.ADVLAB_BACKEND = 'cpu';
  try {
    assert.equal((await initBackend({ loadNode: absentNode })).name, 'cpu');
    assert.equal((await initBackend({ backend: 'wasm', loadNode: absentNode })).name, 'wasm');
    process.env.ADVLAB_BACKEND = 'gpu';
    await assert.rejects(initBackend({ loadNode: absentNode }), /ADVLAB_BACKEND: unknown backend "gpu"/);
  } finally {
    delete process.env.ADVLAB_BACKEND;
  }
  await initBackend({ backend: 'wasm' });
});

test('unknown backend names are rejected with the list of valid ones', () => {
  assert.throws(() => parseBackendName('webgl', '--backend'), /--backend: unknown backend "webgl"; expected one of auto, node, wasm, cpu/);
});

test('the wasm binaries are read from the installed package', () => {
  for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm']) assert.ok(existsSync(join(wasmDir(), f)), f);
});
