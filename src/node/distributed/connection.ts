/**
 * Reaching Redis: checking a `--queue` URL and opening connections that fail
 * fast when Redis is not there.
 *
 * Why a separate probe: BullMQ's own connections retry forever (they must, to
 * survive a Redis restart mid-run), so a wrong host or port would hang the
 * command. One short-lived connection that never retries answers first.
 */
import { Redis } from 'ioredis';
import { AdvlabError, InputError } from '../../errors.js';

/** How long the reachability probe waits for Redis to answer PING. */
export const CONNECT_TIMEOUT_MS = 4000;

/**
 * Checks a Redis URL (`redis://[user:password@]host[:port][/db]`, or
 * `rediss://` for TLS) and returns it normalised.
 *
 * @throws InputError naming `argument` on anything else.
 */
export function parseRedisUrl(url: string, argument = 'queue'): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InputError(argument, `"${url}" is not a URL; expected redis://host:6379`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new InputError(argument, `"${url}" is not a Redis URL; expected redis://host:6379 (or rediss:// for TLS)`);
  if (!parsed.hostname) throw new InputError(argument, `"${url}" has no host; expected redis://host:6379`);
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new InputError(argument, `"${url}": the path must be a database number (e.g. /0), got "/${db}"`);
  return parsed;
}

/** The URL without its password, for logs and result files. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.href.replace(/\/$/, '');
  } catch {
    return '(invalid URL)';
  }
}

/**
 * Resolves once Redis at `url` answers PING, within {@link CONNECT_TIMEOUT_MS}.
 *
 * @throws InputError naming `argument` when the URL is malformed or nothing
 *   answers in time (refused, unknown host, not Redis, wrong password).
 */
export async function checkRedis(url: string, argument = 'queue', timeoutMs = CONNECT_TIMEOUT_MS): Promise<void> {
  parseRedisUrl(url, argument);
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  let lastError: Error | undefined;
  probe.on('error', (e: Error) => (lastError = e)); // reported below; unhandled 'error' events would print instead
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    await Promise.race([probe.connect().then(() => probe.ping()), timeout]);
  } catch (e) {
    const why = (lastError ?? (e as Error)).message || String(e);
    throw new InputError(argument, `cannot reach Redis at ${redactUrl(url)}: ${why}`);
  } finally {
    clearTimeout(timer);
    probe.disconnect();
  }
}

/**
 * A connection for BullMQ (which requires `maxRetriesPerRequest: null` on the
 * connections it blocks on). Call {@link checkRedis} first: this one retries.
 */
export function openRedis(url: string): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: null });
  // Connection drops are retried by ioredis; keep them from crashing the process as unhandled 'error' events.
  client.on('error', () => {});
  return client;
}

/** Closes connections, ignoring ones already closed. */
export async function closeRedis(...clients: (Redis | undefined)[]): Promise<void> {
  await Promise.all(
    clients.map(async (c) => {
      if (!c) return;
      try {
        await c.quit();
      } catch {
        c.disconnect();
      }
    }),
  );
}

/** An error about the queue itself (not a task's), for the caller to report. */
export class QueueError extends AdvlabError {}
