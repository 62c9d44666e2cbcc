import { webcrypto } from 'node:crypto';

type X509 = typeof import('@peculiar/x509');

let loading: Promise<X509> | undefined;

/**
 * @peculiar/x509, loaded on first use: only creating a CA, a server certificate or a signing key needs it,
 * so a restart with existing state never pays for it (start-up time, idle memory). It resolves its ASN.1
 * services through tsyringe, which needs the reflect-metadata polyfill first, and signs with WebCrypto.
 */
export function loadX509(): Promise<X509> {
  loading ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);
    return x509;
  })();
  return loading;
}
