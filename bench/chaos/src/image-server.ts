import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { drawProductImage } from '@keyless/launcher';

/**
 * Serves a product image at every `/images/<name>.png` (what the local Vision fetches by URL) and counts the
 * fetches per path, so each upsert can carry an image URL of its own.
 */
export class ImageServer {
  readonly fetches = new Map<string, number>();
  private readonly image = drawProductImage('shoe', [200, 40, 40], () => 0.5);

  private constructor(private readonly server: Server) {}

  static async start(): Promise<ImageServer> {
    const server = createServer();
    const images = new ImageServer(server);
    server.on('request', (request: IncomingMessage, response: ServerResponse) => images.serve(request.url ?? '', response));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return images;
  }

  /** `127.0.0.1:<port>`, as the local Vision's allow-list names hosts. */
  get hostPort(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The URL of the image named `name`. */
  url(name: string): string {
    return `http://${this.hostPort}/images/${encodeURIComponent(name)}.png`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private serve(path: string, response: ServerResponse): void {
    if (!/^\/images\/[^/]+\.png$/.test(path)) {
      response.writeHead(404).end();
      return;
    }
    this.fetches.set(path, (this.fetches.get(path) ?? 0) + 1);
    response.writeHead(200, { 'content-type': 'image/png', 'content-length': this.image.length }).end(this.image);
  }
}
