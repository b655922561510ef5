import { Command, Option } from 'commander';
import { InputError } from '../errors.js';
import { workerCount } from '../node/workers.js';
import { backendOption, positiveOption, startBackend, workersOption } from './common.js';

/** `advlab worker`: takes attack and evaluation batches from a queue until stopped (SIGTERM or Ctrl-C). */
export function workerCommand(): Command {
  return new Command('worker')
    .description('run batches of distributed `advlab eval --queue` / `advlab attack --queue` runs: takes jobs from the BullMQ queue in Redis until SIGTERM or Ctrl-C (the first finishes the running jobs, a second gives them back)')
    .addOption(new Option('--queue <url>', 'Redis URL of the queue, e.g. redis://host:6379 (required)'))
    .option('--threads <n|auto>', 'jobs taken at once, one thread each; auto: one per core on wasm/cpu, 1 on tfjs-node', workersOption, 'auto')
    .option('--lock-seconds <s>', "a job's lock; the job of a worker that died goes to another worker after about this long", positiveOption('--lock-seconds'), 30)
    .option('--stalled-seconds <s>', "interval of this worker's checks for jobs of dead workers", positiveOption('--stalled-seconds'), 30)
    .addOption(backendOption())
    .action(async (o) => {
      if (!o.queue) throw new InputError('--queue', 'required: the Redis URL the coordinator uses (redis://host:6379)');
      const log = (line: string) => process.stdout.write(line + '\n');
      // Imported here: the other commands should not load BullMQ.
      const [{ startQueueWorker }, { redactUrl }] = await Promise.all([import('../node/distributed/queue-worker.js'), import('../node/distributed/connection.js')]);
      const backend = await startBackend(o.backend, undefined, log);
      const threads = workerCount(o.threads, backend, Number.MAX_SAFE_INTEGER);
      const worker = await startQueueWorker({
        url: o.queue,
        backend,
        threads,
        lockSeconds: o.lockSeconds,
        stalledSeconds: o.stalledSeconds,
        onEvent: (e) => {
          if (e.type === 'ready') log(`worker ${e.name} ready: ${e.threads} thread${e.threads === 1 ? '' : 's'}, queue ${redactUrl(o.queue)}`);
          else if (e.type === 'start') log(`job ${e.id} start: ${e.label}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`);
          else if (e.type === 'done') log(`job ${e.id} done: ${e.label} in ${(e.ms / 1000).toFixed(2)} s`);
          else log(`job ${e.id} failed: ${e.label}: ${e.message}${e.final ? '' : ' (will be retried)'}`);
        },
      }).catch((e: unknown) => {
        if (e instanceof InputError && ['queue', 'threads', 'lockSeconds', 'stalledSeconds'].includes(e.argument)) {
          const option = { queue: '--queue', threads: '--threads', lockSeconds: '--lock-seconds', stalledSeconds: '--stalled-seconds' }[e.argument]!;
          throw new InputError(option, e.message.slice(e.argument.length + 2));
        }
        throw e;
      });
      // Runs until a signal: the first lets running jobs finish, a second gives them back to the queue.
      await new Promise<void>((resolve, reject) => {
        let signals = 0;
        const stop = (signal: string) => {
          const force = ++signals > 1;
          log(force ? `${signal}: stopping now; running jobs go back to the queue` : `${signal}: finishing running jobs, then stopping (again to stop now)`);
          worker.close(force).then(resolve, reject);
        };
        process.on('SIGTERM', () => stop('SIGTERM'));
        process.on('SIGINT', () => stop('SIGINT'));
      });
      log('worker stopped');
    });
}
