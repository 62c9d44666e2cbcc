import type { LoggerService } from '@nestjs/common';

/** Keeps what the gateway logs (to find the causes a caller is not told, to count what reached a check). */
export class RecordingLogger implements LoggerService {
  readonly lines: string[] = [];

  log(message: unknown): void {
    this.lines.push(String(message));
  }

  error(message: unknown): void {
    this.lines.push(String(message));
  }

  warn(message: unknown): void {
    this.lines.push(String(message));
  }
}
