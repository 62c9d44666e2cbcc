import type { LoggerService } from '@nestjs/common';

/** A Nest log level. */
export type LogLevel = 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';

/**
 * A Nest logger that keeps every line (level, context, message) so tests can assert what operators would read;
 * `messages(level?)` lists the messages, all or of one level.
 */
export class RecordingLogger implements LoggerService {
  readonly lines: { level: LogLevel; message: string; context?: string }[] = [];

  log(message: unknown, context?: string): void {
    this.record('log', message, context);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.record('error', message, typeof rest.at(-1) === 'string' ? (rest.at(-1) as string) : undefined);
  }
  warn(message: unknown, context?: string): void {
    this.record('warn', message, context);
  }
  debug(message: unknown, context?: string): void {
    this.record('debug', message, context);
  }
  verbose(message: unknown, context?: string): void {
    this.record('verbose', message, context);
  }
  fatal(message: unknown, context?: string): void {
    this.record('fatal', message, context);
  }

  messages(level?: LogLevel): string[] {
    return this.lines.filter((line) => !level || line.level === level).map((line) => line.message);
  }

  private record(level: LogLevel, message: unknown, context: string | undefined): void {
    this.lines.push({ level, message: String(message), ...(context ? { context } : {}) });
  }
}
