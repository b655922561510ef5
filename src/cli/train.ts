import { Command } from 'commander';
import { join } from 'node:path';
import { trainRun, TRAIN_DEFAULTS } from '../models/train-run.js';
import { describeZoo } from '../models/zoo.js';
import { BUILTIN_DATASETS } from '../data/builtin.js';
import { createProgress } from './progress.js';
import { intOption, positiveOption, startBackend, pathTag } from './common.js';

/** `advlab train`: a thin shell over {@link trainRun}. */
export function trainCommand(): Command {
  return new Command('train')
    .description('train a zoo model on a dataset (Adam, seeded, checkpointed every epoch)')
    .option('--model <name|path>', `zoo model (${describeZoo().map((m) => m.name).join(', ')}) or a saved model folder to train further`, 'small-cnn')
    .option('--dataset <name|path>', `built-in (${BUILTIN_DATASETS.join(', ')}) or a path (IDX, CIFAR-10 binary, NPY, image folder)`, 'mnist')
    .option('--out <dir>', 'output folder (default: runs/<model>-<dataset>)')
    .option('--epochs <n>', 'epochs (default: 10 below 20,000 training images, else 5)', intOption('--epochs', 1))
    .option('--batch-size <n>', 'batch size', intOption('--batch-size', 1), TRAIN_DEFAULTS.batchSize)
    .option('--lr <x>', 'Adam learning rate', positiveOption('--lr'), TRAIN_DEFAULTS.learningRate)
    .option('--schedule <name>', 'learning-rate schedule: cosine or constant', TRAIN_DEFAULTS.schedule)
    .option('--augment <spec>', 'training augmentation: none, shift or shift:N (random translation by up to N pixels)', TRAIN_DEFAULTS.augment)
    .option('--seed <n>', 'random seed', intOption('--seed'), TRAIN_DEFAULTS.seed)
    .option('--backend <name>', 'auto, node, wasm or cpu; auto honours env ADVLAB_BACKEND', 'auto')
    .option('--resume', 'continue from the last checkpoint in <out>/checkpoint', false)
    .option('--no-progress', 'plain lines instead of a progress bar')
    .action(async (o) => {
      const progress = createProgress(process.stdout, o.progress);
      const backend = await startBackend(o.backend, undefined, (l) => progress.log(l));
      const datasetTag = pathTag(String(o.dataset), 'data');
      const modelTag = pathTag(String(o.model), 'model');
      const out: string = o.out ?? join('runs', `${modelTag}-${datasetTag}`);
      const result = await trainRun(
        {
          model: o.model,
          dataset: o.dataset,
          out,
          epochs: o.epochs,
          batchSize: o.batchSize,
          learningRate: o.lr,
          schedule: o.schedule,
          augment: o.augment,
          seed: o.seed,
          resume: o.resume,
          onProgress: (e) => {
            if (e.type === 'dataset') {
              const d = e.dataset;
              progress.log(`dataset: ${d.name} (${d.train.count} train, ${d.test.count} test, ${d.skipped} malformed records skipped)`);
            } else if (e.type === 'resumed') progress.log(`resumed after epoch ${e.epoch}`);
            else if (e.type === 'epoch-start') progress.start(e.batches, `epoch ${e.epoch}/${e.epochs}`);
            else if (e.type === 'batch') progress.update(e.batch, { loss: e.loss.toFixed(4), acc: e.accuracy.toFixed(4) });
            else if (e.type === 'epoch-end') {
              const test = e.testAccuracy === undefined ? '' : ` test acc ${e.testAccuracy.toFixed(4)}`;
              progress.stop(`epoch ${e.epoch}/${e.epochs}: loss ${e.loss.toFixed(4)} train acc ${e.trainAccuracy.toFixed(4)}${test} (${e.seconds.toFixed(1)}s)`);
            }
          },
        },
        backend,
      );
      progress.log(`clean accuracy: ${(result.cleanAccuracy * 100).toFixed(2)}% on ${result.dataset.testSize} test images`);
      progress.log(`result: ${join(out, 'result.json')}`);
    });
}
