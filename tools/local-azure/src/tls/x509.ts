// @peculiar/x509, set up once: it resolves its ASN.1 services through tsyringe, which needs the
// reflect-metadata polyfill loaded first, and it signs with Node's WebCrypto.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);

export { x509 };
