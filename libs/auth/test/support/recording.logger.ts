import type { LoggerService } from '@nestjs/common';

/** A logger that keeps every line (level + message) so tests can assert what operators would read. */
export class RecordingLogger implements LoggerService {
  readonly lines: { level: 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal'; message: string }[] = [];

  log(message: unknown): void {
    this.lines.push({ level: 'log', message: String(message) });
  }
  error(message: unknown): void {
    this.lines.push({ level: 'error', message: String(message) });
  }
  warn(message: unknown): void {
    this.lines.push({ level: 'warn', message: String(message) });
  }
  debug(message: unknown): void {
    this.lines.push({ level: 'debug', message: String(message) });
  }
  verbose(message: unknown): void {
    this.lines.push({ level: 'verbose', message: String(message) });
  }
  fatal(message: unknown): void {
    this.lines.push({ level: 'fatal', message: String(message) });
  }

  messages(level?: RecordingLogger['lines'][number]['level']): string[] {
    return this.lines.filter((line) => !level || line.level === level).map((line) => line.message);
  }
}
