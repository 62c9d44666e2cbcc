import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a stand-in data plane received. */
export interface ReceivedRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  body: string;
}

/**
 * A loopback HTTPS server answering with the bodies Azure documents for a data plane, used until the
 * local Azure's own OpenAI and Vision data planes are available. It records what the real SDKs sent.
 */
export class StubDataPlane {
  readonly received: ReceivedRequest[] = [];
  private server: Server | undefined;

  constructor(private readonly answer: (request: ReceivedRequest) => { status: number; body: unknown; headers?: Record<string, string> }) {}

  async start(tls: { certPem: string; keyPem: string }): Promise<string> {
    this.server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `https://localhost:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request = { method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization, body: Buffer.concat(chunks).toString('utf8') };
    this.received.push(request);
    const { status, body, headers } = this.answer(request);
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }
}
