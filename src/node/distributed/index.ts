/**
 * Distributed attack and evaluation runs on Redis with BullMQ: the
 * coordinator's pool (`QueuePool`), the worker (`startQueueWorker`), and what
 * they exchange (wire.ts). See ARCHITECTURE.md and the README's "Scaling out".
 */
export { QueuePool, DEFAULT_QUEUE, DEFAULT_ATTEMPTS, type QueuePoolOptions, type QueuePoolStats, type QueueJobEvent, type JobData, type JobReturn } from './queue-pool.js';
export { startQueueWorker, type QueueWorker, type QueueWorkerOptions, type QueueWorkerEvent } from './queue-worker.js';
export { checkRedis, parseRedisUrl, redactUrl, QueueError, CONNECT_TIMEOUT_MS } from './connection.js';
export { startRunPool, type RunPool, type RunPoolOptions, type QueueRunInfo } from './run-pool.js';
export { openRunId, RUN_ID_FILE } from './run-id.js';
export { BUILTIN_TASK_MODULES, type TaskModules } from './tasks.js';
