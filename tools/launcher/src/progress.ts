/**
 * Console progress of `npm start`: one line per step, counted steps updated in place on a terminal
 * (a line every 10 % otherwise, so CI logs stay short), and the time each step took.
 */
export class Progress {
  private title: string | undefined;
  private started = 0;
  private lastShownPercent = -1;
  /** The in-place status line currently shown (terminal only). */
  private status: string | undefined;

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {}

  step(title: string): void {
    this.title = title;
    this.started = performance.now();
    this.lastShownPercent = -1;
    this.show(`… ${title}`);
  }

  count(done: number, total: number): void {
    if (this.out.isTTY) return this.show(`… ${this.title} ${done}/${total}`);
    const percent = Math.floor((done / total) * 100);
    if (percent >= this.lastShownPercent + 10 || done === total) {
      this.lastShownPercent = percent;
      this.out.write(`  ${done}/${total}\n`);
    }
  }

  done(note?: string): void {
    const seconds = ((performance.now() - this.started) / 1000).toFixed(1);
    this.settle(`✓ ${this.title} (${seconds} s${note ? `, ${note}` : ''})`);
    this.title = undefined;
  }

  fail(message: string): void {
    if (this.title) this.settle(`✗ ${this.title}`);
    this.out.write(`${message}\n`);
  }

  /**
   * Leaves the step under way unfinished (the launcher is stopping): a terminal keeps its status line as last shown,
   * and the lines that follow no longer bring it back.
   */
  abandon(): void {
    if (this.out.isTTY && this.status) this.out.write('\n');
    this.status = undefined;
    this.title = undefined;
  }

  /** A line of its own (service warnings, notes) above the in-place status line. */
  line(text: string): void {
    const status = this.status;
    this.clear();
    this.out.write(`${text}\n`);
    if (status) this.show(status);
  }

  private show(text: string): void {
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[2K${text}`);
      this.status = text;
    } else if (text.startsWith('… ') && !/\d+\/\d+$/.test(text)) {
      this.out.write(`${text}\n`);
    }
  }

  /** Replaces the status line with a final one. */
  private settle(text: string): void {
    this.clear();
    this.out.write(`${text}\n`);
  }

  private clear(): void {
    if (this.out.isTTY && this.status) this.out.write('\r\x1b[2K');
    this.status = undefined;
  }
}

/** An output that writes nothing (progress of loads that nobody watches, as in tests). */
export const silent = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;
