/**
 * What crosses the queue: task payloads and results, and the models they use.
 *
 * Payloads and results are the plain data a local pool sends between threads
 * (typed arrays, objects, numbers including Infinity and NaN), so they are
 * encoded with Node's structured-clone serializer (`v8.serialize`) and sent as
 * base64 text inside BullMQ's JSON job data. Models are not sent with every
 * job: each {@link SharedModel} in a payload is replaced by a reference to a
 * content-addressed blob (the canonical hash of its content) stored once in
 * Redis; a worker fetches a blob it has not cached, checks its hash, and only
 * then builds the model. Hashes are of values, not of serialized bytes
 * (canonical-hash.ts): V8's bytes for the same numbers vary between runs.
 *
 * Every machine must run the same advlab version (the task code) and a Node
 * version that reads the coordinator's serialization (the same major is safe).
 */
import { deserialize, serialize } from 'node:v8';
import type { Redis } from 'ioredis';
import { isSharedModel, type SharedModel } from '../../models/pool-model.js';
import { FileFormatError } from '../../errors.js';
import { canonicalHash } from './canonical-hash.js';

/** A payload's stand-in for a model: the hash of its blob. */
interface ModelRef {
  $advlabModel: string;
}

/** Seconds a model blob stays in Redis after its last publication (a week: long enough to resume a run). */
export const MODEL_TTL_SECONDS = 7 * 24 * 3600;

/** Redis key of a model blob. */
export const modelKey = (prefix: string, hash: string): string => `${prefix}:model:${hash}`;

/**
 * Copies `value`, replacing every SharedModel (at any depth of plain objects
 * and arrays) by what `replace` returns. Typed arrays and other non-plain
 * values are kept as they are.
 */
function mapModels(value: unknown, replace: (m: SharedModel) => unknown): unknown {
  if (isSharedModel(value)) return replace(value);
  if (Array.isArray(value)) return value.map((v) => mapModels(v, replace));
  if (value != null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapModels(v, replace)]));
  }
  return value;
}

/** The blob of a model (topology, weight specs and weights) and its hash. */
export function modelBlob(model: SharedModel): { hash: string; blob: Buffer } {
  const a = model.artifacts;
  const weights = a.weightData == null ? new Uint8Array(0) : new Uint8Array(a.weightData as ArrayBuffer).slice();
  const content = { ...a, weightData: weights };
  return { hash: canonicalHash(content), blob: serialize(content) };
}

/**
 * Publishes models to Redis once each, by content hash. Keeps the hash of
 * every snapshot it has seen, so a model shared by hundreds of jobs is hashed
 * and uploaded once.
 */
export class ModelPublisher {
  private readonly hashes = new WeakMap<SharedModel, Promise<string>>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** The hash of `model`'s blob, after making sure Redis holds the blob. */
  publish(model: SharedModel): Promise<string> {
    let hash = this.hashes.get(model);
    if (!hash) {
      const { hash: h, blob } = modelBlob(model);
      // SET NX keeps an existing copy; EXPIRE refreshes its lifetime either way.
      hash = this.redis
        .multi()
        .set(modelKey(this.prefix, h), blob, 'EX', MODEL_TTL_SECONDS, 'NX')
        .expire(modelKey(this.prefix, h), MODEL_TTL_SECONDS)
        .exec()
        .then(() => h);
      hash.catch(() => this.hashes.delete(model));
      this.hashes.set(model, hash);
    }
    return hash;
  }
}

/**
 * Encodes a payload for a job: its models published and replaced by their
 * hashes, the rest serialized. Also returns the hashes (listed in the job so
 * a worker can fetch them before decoding).
 */
export async function encodePayload(payload: unknown, publisher: ModelPublisher): Promise<{ data: string; models: string[]; content: unknown }> {
  const found: SharedModel[] = [];
  mapModels(payload, (m) => found.push(m));
  const hashes = await Promise.all(found.map((m) => publisher.publish(m)));
  let k = 0;
  const replaced = mapModels(payload, () => ({ $advlabModel: hashes[k++] }) satisfies ModelRef);
  return { data: serialize(replaced).toString('base64'), models: [...new Set(hashes)], content: replaced };
}

/**
 * Models fetched from Redis and verified, for a worker. Keeps the most recent
 * few (a worker serves few models at a time), as SharedModels keyed by hash:
 * the pool-model cache of every thread then builds each model once.
 */
export class ModelFetcher {
  private readonly cache = new Map<string, Promise<SharedModel>>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly capacity = 4,
  ) {}

  /**
   * The model whose blob has `hash`.
   *
   * @throws FileFormatError when Redis holds no such blob (expired, or
   *   published to another Redis) or its bytes do not have that hash.
   */
  get(hash: string): Promise<SharedModel> {
    let model = this.cache.get(hash);
    if (model) this.cache.delete(hash);
    else {
      model = this.fetch(hash);
      model.catch(() => this.cache.get(hash) === model && this.cache.delete(hash));
    }
    this.cache.set(hash, model);
    for (const key of this.cache.keys()) {
      if (this.cache.size <= this.capacity) break;
      this.cache.delete(key);
    }
    return model;
  }

  private async fetch(hash: string): Promise<SharedModel> {
    const key = modelKey(this.prefix, hash);
    const blob = await this.redis.getBuffer(key);
    if (blob == null) throw new FileFormatError(key, 'no such model in Redis (expired, or the coordinator uses another Redis)');
    let artifacts: SharedModel['artifacts'] & { weightData: Uint8Array };
    let actual: string;
    try {
      artifacts = deserialize(blob);
      actual = canonicalHash(artifacts);
    } catch (e) {
      throw new FileFormatError(key, `model blob is not readable (${(e as Error).message}): refusing to use it`);
    }
    if (actual !== hash) throw new FileFormatError(key, `model blob has hash ${actual}, expected ${hash}: refusing to use it`);
    if (!(artifacts.weightData instanceof Uint8Array)) throw new FileFormatError(key, 'model blob has no weight bytes: refusing to use it');
    // Weights in a SharedArrayBuffer, as shareModel makes them: the worker's threads share one copy.
    const shared = new SharedArrayBuffer(artifacts.weightData.byteLength);
    new Uint8Array(shared).set(artifacts.weightData);
    return { key: hash, artifacts: { ...artifacts, weightData: shared as unknown as ArrayBuffer } };
  }
}

/** Decodes a job's payload on a worker, putting the verified models back in. */
export async function decodePayload(data: string, fetcher: ModelFetcher): Promise<unknown> {
  const value = deserialize(Buffer.from(data, 'base64'));
  const refs: string[] = [];
  walkRefs(value, (h) => refs.push(h));
  const models = new Map(await Promise.all([...new Set(refs)].map(async (h) => [h, await fetcher.get(h)] as const)));
  return replaceRefs(value, models);
}

function isModelRef(v: unknown): v is ModelRef {
  return v != null && typeof v === 'object' && typeof (v as ModelRef).$advlabModel === 'string' && Object.keys(v).length === 1;
}

function walkRefs(value: unknown, visit: (hash: string) => void): void {
  if (isModelRef(value)) visit(value.$advlabModel);
  else if (Array.isArray(value)) value.forEach((v) => walkRefs(v, visit));
  else if (value != null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) Object.values(value).forEach((v) => walkRefs(v, visit));
}

function replaceRefs(value: unknown, models: Map<string, SharedModel>): unknown {
  if (isModelRef(value)) return models.get(value.$advlabModel);
  if (Array.isArray(value)) return value.map((v) => replaceRefs(v, models));
  if (value != null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceRefs(v, models)]));
  }
  return value;
}

/** Encodes a task's result (plain data) for BullMQ's return value. */
export const encodeResult = (result: unknown): string => serialize(result).toString('base64');

/** Decodes a job's return value. */
export const decodeResult = (data: string): unknown => deserialize(Buffer.from(data, 'base64'));

/** A job's identity from its content (the payload with its models as references): the same task on the same payload gives the same id, in any process. */
export const contentHash = (task: string, content: unknown): string => canonicalHash(task, content);
