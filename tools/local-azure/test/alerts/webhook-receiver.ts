import { createServer, type Server } from 'node:http';
import type { CommonAlertPayload } from '../../src/alerts/common-alert-schema.js';

/** A real HTTP webhook receiver for tests: records every POST and answers with the statuses it is told. */
export class WebhookReceiver {
  readonly received: { payload: CommonAlertPayload; contentType: string | undefined; status: number }[] = [];
  /** Statuses to answer, in order; once empty, 200. `hang` never answers. */
  readonly answers: (number | 'hang')[] = [];
  private readonly waiters = new Set<() => void>();
  private server!: Server;
  url = '';

  static async start(): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    receiver.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const answer = receiver.answers.shift() ?? 200;
        const status = answer === 'hang' ? 0 : answer;
        receiver.received.push({ payload: JSON.parse(Buffer.concat(chunks).toString('utf8')) as CommonAlertPayload, contentType: request.headers['content-type'], status });
        for (const wake of receiver.waiters) wake();
        if (answer !== 'hang') response.writeHead(answer).end();
      });
    });
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    receiver.url = `http://127.0.0.1:${(receiver.server.address() as { port: number }).port}/alerts`;
    return receiver;
  }

  /** Waits until a POST matches `predicate` (polling the records as they arrive), or fails after `timeoutInMs`. */
  async waitFor(predicate: (payload: CommonAlertPayload) => boolean, timeoutInMs = 10_000): Promise<CommonAlertPayload> {
    const deadline = Date.now() + timeoutInMs;
    for (;;) {
      const found = this.received.find((r) => predicate(r.payload));
      if (found) return found.payload;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching webhook POST within ${timeoutInMs} ms; received: ${JSON.stringify(this.received.map((r) => r.payload.data.essentials))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        this.waiters.add(done);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
