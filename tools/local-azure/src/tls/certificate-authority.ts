import { createPrivateKey, KeyObject, webcrypto, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadX509 } from './x509.js';

type CryptoKey = webcrypto.CryptoKey;

const defaults = {
  /** The CA lives long: regenerating it invalidates every NODE_EXTRA_CA_CERTS users have set up. */
  caValidityDays: 3650,
  /** Server certificates are cheap to reissue; they are reissued when the name list changes too. */
  serverValidityDays: 397,
  /** Names every server certificate covers: loopback in both families, and the compose host name. */
  serverNames: ['localhost', '127.0.0.1', '::1', 'local-azure'],
} as const;

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** PEM material a TLS listener needs. */
export interface ServerCredentials {
  /** The local CA certificate (PEM): what clients trust through `NODE_EXTRA_CA_CERTS`. */
  caCertPem: string;
  /** Path of the CA certificate file (the value for `NODE_EXTRA_CA_CERTS`). */
  caCertPath: string;
  /** Server certificate chain (PEM). */
  certPem: string;
  /** Server private key (PKCS#8 PEM). Never leaves `$LOCAL_AZURE_HOME/tls`. */
  keyPem: string;
}

/** Options of {@link loadOrCreateServerCredentials}. */
export interface ServerCredentialsOptions {
  /** Extra DNS names or IP addresses for the server certificate. Default: none. */
  extraNames?: readonly string[];
}

/**
 * Loads the local CA and server certificate from `tlsDir`, creating them on first use. The server
 * certificate is reissued when it is about to expire or its name list no longer matches.
 */
export async function loadOrCreateServerCredentials(
  tlsDir: string,
  options: ServerCredentialsOptions = {},
): Promise<ServerCredentials> {
  const names = [...new Set([...defaults.serverNames, ...(options.extraNames ?? [])])].sort();
  const paths = {
    caCert: join(tlsDir, 'ca.pem'),
    caKey: join(tlsDir, 'ca-key.pem'),
    cert: join(tlsDir, 'server.pem'),
    key: join(tlsDir, 'server-key.pem'),
    names: join(tlsDir, 'server-names.json'),
  };

  if (!existsSync(paths.caCert) || !existsSync(paths.caKey)) {
    const ca = await createCa();
    writeFileSync(paths.caKey, ca.keyPem, { mode: 0o600 });
    writeFileSync(paths.caCert, ca.certPem);
  }
  const caCertPem = readFileSync(paths.caCert, 'utf8');
  const caKeyPem = readFileSync(paths.caKey, 'utf8');

  const currentNames = existsSync(paths.names) ? readFileSync(paths.names, 'utf8') : '';
  if (!existsSync(paths.cert) || currentNames !== JSON.stringify(names) || expiresSoon(paths.cert)) {
    const server = await issueServerCertificate(caCertPem, caKeyPem, names);
    writeFileSync(paths.key, server.keyPem, { mode: 0o600 });
    writeFileSync(paths.cert, server.certPem);
    writeFileSync(paths.names, JSON.stringify(names));
  }

  return {
    caCertPem,
    caCertPath: paths.caCert,
    certPem: readFileSync(paths.cert, 'utf8'),
    keyPem: readFileSync(paths.key, 'utf8'),
  };
}

async function createCa(): Promise<{ certPem: string; keyPem: string }> {
  const x509 = await loadX509();
  const keys = await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']);
  const notBefore = new Date(Date.now() - 60_000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: 'CN=Keyless Local Azure CA, O=Keyless (local development only)',
    notBefore,
    notAfter: addDays(notBefore, defaults.caValidityDays),
    signingAlgorithm: ecdsa,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
}

async function issueServerCertificate(
  caCertPem: string,
  caKeyPem: string,
  names: readonly string[],
): Promise<{ certPem: string; keyPem: string }> {
  const x509 = await loadX509();
  const caCert = new x509.X509Certificate(caCertPem);
  const caKey = await webcrypto.subtle.importKey('pkcs8', pemBody(caKeyPem), ecdsa, false, ['sign']);
  const keys = await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']);
  const notBefore = new Date(Date.now() - 60_000);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: 'CN=localhost, O=Keyless (local development only)',
    issuer: caCert.subject,
    notBefore,
    notAfter: addDays(notBefore, defaults.serverValidityDays),
    signingAlgorithm: ecdsa,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        names.map((name) => (isIpAddress(name) ? { type: 'ip', value: name } : { type: 'dns', value: name })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return {
    certPem: `${cert.toString('pem')}\n${caCertPem}`,
    keyPem: await exportKeyPem(keys.privateKey),
  };
}

function expiresSoon(certPath: string): boolean {
  const cert = new X509Certificate(readFileSync(certPath, 'utf8'));
  return new Date(cert.validTo).getTime() - Date.now() < 7 * 24 * 3600 * 1000;
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }) as string;
}

function pemBody(pem: string): Buffer {
  return createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
}

function serialNumber(): string {
  // Positive 128-bit serial: clear the top bit so DER does not read it as negative.
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

function addDays(date: Date, days: number): Date {
  return new Date(date.getTime() + days * 24 * 3600 * 1000);
}

function isIpAddress(name: string): boolean {
  return /^[\d.]+$/.test(name) || name.includes(':');
}
