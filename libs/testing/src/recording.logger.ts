import type { LoggerService } from '@nestjs/common';

/** A Nest log level. */
export type LogLevel = 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';

/** A line a {@link RecordingLogger} kept. */
export interface RecordedLine {
  level: LogLevel;
  message: string;
  context?: string;
  /** The fields of a structured line (`logger.warn({ status: 431 }, 'message')`, pino's order, which nestjs-pino keeps). */
  fields?: Record<string, unknown>;
}

/**
 * A Nest logger that keeps every line (level, context, message, and the fields of a structured line) so tests can
 * assert what operators would read; `messages(level?)` lists the messages, all or of one level.
 */
export class RecordingLogger implements LoggerService {
  readonly lines: RecordedLine[] = [];

  log(message: unknown, ...rest: unknown[]): void {
    this.record('log', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.record('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.record('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.record('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.record('verbose', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.record('fatal', message, rest);
  }

  messages(level?: LogLevel): string[] {
    return this.lines.filter((line) => !level || line.level === level).map((line) => line.message);
  }

  /**
   * As nestjs-pino reads a call (what the services' logger writes): the last argument after the first is the context
   * (Nest's `Logger` appends its own), and a first argument that is an object (not an `Error`) holds the fields of a
   * structured line, whose message is the next argument: `(message, context)`, `(message, stack, context)`,
   * `(fields, message, context)`.
   */
  private record(level: LogLevel, first: unknown, rest: unknown[]): void {
    const context = rest.length > 0 && typeof rest.at(-1) === 'string' ? (rest.at(-1) as string) : undefined;
    const structured = typeof first === 'object' && first !== null && !(first instanceof Error);
    this.lines.push({
      level,
      message: structured ? String(rest.length > 1 ? rest[0] : '') : String(first),
      ...(context ? { context } : {}),
      ...(structured ? { fields: first as Record<string, unknown> } : {}),
    });
  }
}
