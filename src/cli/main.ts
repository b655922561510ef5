#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isInputError } from '../errors.js';
import { errorReport } from './failure.js';
import { ADVLAB_VERSION } from '../report/meta.js';
import { trainCommand } from './train.js';
import { attackCommand } from './attack.js';
import { evalCommand } from './eval.js';
import { ganCommand } from './gan.js';
import { aaeCommand } from './aae.js';
import { workerCommand } from './worker.js';
import { verifyCommand } from './verify.js';
import { certifyCommand } from './certify.js';
import { advganCommand } from './advgan.js';
import { latentAttackCommand } from './latent-attack.js';

/** Builds the `advlab` program; exported for tests. */
export function program(): Command {
  const root = new Command('advlab').description('adversarial machine learning for TensorFlow.js').version(ADVLAB_VERSION);
  for (const sub of [trainCommand(), attackCommand(), evalCommand(), verifyCommand(), certifyCommand(), ganCommand(), advganCommand(), latentAttackCommand(), aaeCommand(), workerCommand()]) root.addCommand(sub);
  // Subcommands added with addCommand do not inherit settings: throw instead of exiting, everywhere (nested ones too: gan sample).
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(root)) c.showHelpAfterError().exitOverride();
  return root;
}

/**
 * Runs the CLI; returns the exit code (0 ok, 2 bad input, 1 failure). Every
 * error ends as one line on stderr (see failure.ts); the stack trace follows
 * only with ADVLAB_DEBUG=1.
 */
export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version exit with code 0; parse errors were already printed by commander.
      return e.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(errorReport(e));
    return isInputError(e) ? 2 : 1;
  }
}
