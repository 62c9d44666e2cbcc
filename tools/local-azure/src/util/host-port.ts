/**
 * `host:port` as the WHATWG URL parser writes it (lowercase host, IPv6 in brackets and compressed), or
 * `undefined` when `entry` is not exactly a host and a port.
 *
 * @example
 * normalizeHostPort('LocalHost:8080');   // 'localhost:8080'
 * normalizeHostPort('[0:0::1]:3001');    // '[::1]:3001'
 * normalizeHostPort('127.0.0.1');        // undefined (no port)
 */
export function normalizeHostPort(entry: string): string | undefined {
  try {
    const url = new URL(`http://${entry}`);
    if (!url.port || url.pathname !== '/' || url.username || url.password || url.search || url.hash) return undefined;
    return `${url.hostname}:${url.port}`;
  } catch {
    return undefined;
  }
}
