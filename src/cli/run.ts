#!/usr/bin/env node
// Entry point of the `advlab` binary.
import { main } from './main.js';
import { errorReport } from './failure.js';

// An error no command caught (an 'error' event nobody listens to, a rejected
// promise nobody awaits) would otherwise end the process with Node's raw
// stack trace: it gets the same one line as any other failure.
const fatal = (e: unknown) => {
  process.stderr.write(errorReport(e));
  process.exit(1);
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

process.exitCode = await main(process.argv.slice(2));
