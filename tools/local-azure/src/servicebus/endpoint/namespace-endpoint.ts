import { createServer as createHttpServer, type RequestListener, type Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { LocalAzureConfig } from '../../config/local-azure-config.js';
import { answeringClientErrors, listenerOptions, type ClientErrorShape, type RefusalLogTarget } from '../../http/http-kit.js';
import type { ServerCredentials } from '../../tls/certificate-authority.js';
import { acceptAmqpWebSocket } from './websocket-stream.js';

/** Options of {@link NamespaceEndpoint}. */
export interface NamespaceEndpointOptions {
  /**
   * Takes a connection that speaks AMQP: a TLS socket whose first bytes are the AMQP protocol header, or
   * the byte stream of an AMQP WebSocket (`wss://<namespace>/$servicebus/websocket`).
   */
  amqp(socket: Duplex): void;
  /** Answers HTTP requests (the management API). */
  http: RequestListener;
  /** How the management API words a request that Node's HTTP parser refused. */
  httpClientErrors: ClientErrorShape;
  /** Where such a refusal is logged. */
  refusals: RefusalLogTarget;
  /** How long the endpoint waits for slow clients (the configuration's `network.limits`). */
  limits: LocalAzureConfig['network']['limits'];
}

const defaults = {
  /** Keep idle management connections as long as an AMQP connection may idle (the SDK reuses one socket). */
  httpKeepAliveTimeoutInMs: 120_000,
  /** A connection that sends nothing after the TLS handshake is closed after this long. */
  firstBytesTimeoutInMs: 30_000,
};

/** First byte of the AMQP protocol header ("AMQP"); no HTTP method starts with "A". */
const amqpHeaderFirstByte = 0x41;

/**
 * The namespace's one TLS endpoint. The SDK derives both its AMQP and its HTTPS (management API) address
 * from the one fully qualified namespace and sets no ALPN, so the endpoint tells the protocols apart by
 * the first decrypted byte of each connection: the AMQP header starts with "A", an HTTP request with its
 * method. The first chunk is put back before the connection is handed on, so nothing is lost, and after
 * that the socket belongs to the broker or the HTTP server alone (the AMQP path pays nothing per frame).
 * AMQP over WebSockets comes through the HTTP side as an upgrade and is handed to the broker as a stream.
 */
export class NamespaceEndpoint {
  private readonly http: HttpServer;
  /** Connections of the management API, and connections that have not sent their first bytes yet. */
  private readonly sockets = new Set<TLSSocket>();
  private stopped = false;

  constructor(private readonly options: NamespaceEndpointOptions) {
    this.http = answeringClientErrors(createHttpServer(listenerOptions(options.limits, { keepAliveTimeoutInMs: defaults.httpKeepAliveTimeoutInMs }), options.http), options.refusals, options.httpClientErrors);
    // Node enforces the headers and request timeouts from a check it starts when a server begins listening, and this
    // server never listens (the TLS listener hands it its connections): without this, a client that trickled its
    // request held its connection for ever.
    this.http.emit('listening');
    // AMQP over WebSockets (the SDK's webSocketOptions, e.g. through a proxy) arrives as an HTTP upgrade.
    this.http.on('upgrade', (request, socket, head: Buffer) => {
      const stream = acceptAmqpWebSocket(request, socket, head);
      if (stream) options.amqp(stream);
    });
  }

  /** A TLS server for one listening address (the loopback listener binds one per address family). */
  createServer(credentials: ServerCredentials): TlsServer {
    // Small AMQP frames (dispositions, flows) must not wait for Nagle's algorithm.
    const server = createTlsServer({ cert: credentials.certPem, key: credentials.keyPem, noDelay: true, handshakeTimeout: this.options.limits.tlsHandshakeTimeoutInMs });
    server.on('secureConnection', (socket) => this.route(socket));
    server.on('tlsClientError', (_error, socket) => socket.destroy());
    return server;
  }

  /**
   * Closes the management API's connections and those not routed yet (the broker closes its own); a connection
   * whose handshake ends later is closed at once.
   */
  stop(): void {
    this.stopped = true;
    for (const socket of this.sockets) socket.destroy();
    this.http.closeAllConnections();
    // Stops the timeout check (the server is not listening, which close reports to the callback).
    this.http.close(() => undefined);
  }

  private route(socket: TLSSocket): void {
    if (this.stopped) return void socket.destroy();
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const timer = setTimeout(() => socket.destroy(), defaults.firstBytesTimeoutInMs);
    timer.unref();
    const onClose = (): void => clearTimeout(timer);
    socket.once('close', onClose);
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      socket.off('close', onClose);
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] === amqpHeaderFirstByte) {
        // From here the broker owns it (and closes it when it stops).
        this.sockets.delete(socket);
        this.options.amqp(socket);
      } else {
        this.http.emit('connection', socket);
      }
      socket.resume();
    });
  }
}
