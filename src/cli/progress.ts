import cliProgress from 'cli-progress';

/** A progress display: a bar on a terminal, plain lines otherwise (logs, CI). */
export interface Progress {
  start(total: number, label: string): void;
  update(done: number, fields: Record<string, string>): void;
  stop(summary: string): void;
  log(line: string): void;
  /** Ends a running bar where it stands (cursor shown again), so an error line that follows starts a line of its own. */
  abort(): void;
}

/** Chooses the display from whether stdout is a terminal. */
export function createProgress(stream: NodeJS.WriteStream = process.stdout, enabled = true): Progress {
  return enabled && stream.isTTY ? new BarProgress(stream) : new LineProgress(stream);
}

class BarProgress implements Progress {
  private bar: cliProgress.SingleBar | undefined;
  constructor(private stream: NodeJS.WriteStream) {}
  start(total: number, label: string): void {
    this.bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} | {info} | ETA {eta_formatted}`, stream: this.stream, hideCursor: true, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(total, 0, { info: '' });
  }
  update(done: number, fields: Record<string, string>): void {
    this.bar?.update(done, { info: formatFields(fields) });
  }
  stop(summary: string): void {
    this.bar?.stop();
    this.bar = undefined;
    this.stream.write(summary + '\n');
  }
  log(line: string): void {
    this.stream.write(line + '\n');
  }
  abort(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}

/** Without a terminal: one line when a phase starts, at every 25%, and at its end. */
class LineProgress implements Progress {
  private total = 0;
  private label = '';
  private nextMark = 0;
  private t0 = 0;
  constructor(private stream: NodeJS.WriteStream) {}
  start(total: number, label: string): void {
    this.total = total;
    this.label = label;
    this.nextMark = 0.25;
    this.t0 = performance.now();
  }
  update(done: number, fields: Record<string, string>): void {
    if (this.total > 0 && done / this.total >= this.nextMark && done < this.total) {
      const elapsed = (performance.now() - this.t0) / 1000;
      const eta = (elapsed / done) * (this.total - done);
      this.stream.write(`${this.label} ${done}/${this.total} | ${formatFields(fields)} | ETA ${eta.toFixed(0)}s\n`);
      while (done / this.total >= this.nextMark) this.nextMark += 0.25;
    }
  }
  stop(summary: string): void {
    this.stream.write(summary + '\n');
  }
  log(line: string): void {
    this.stream.write(line + '\n');
  }
  abort(): void {
    // Every line is complete already.
  }
}

function formatFields(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k} ${v}`)
    .join(' ');
}
