import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, webcrypto, type JsonWebKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { loadX509 } from '../tls/x509.js';
import type { JWK } from 'jose';

/** A public signing key as Entra publishes it in its JWKS. */
export interface PublishedKey extends JWK {
  kty: 'RSA';
  use: 'sig';
  kid: string;
  x5t: string;
  n: string;
  e: string;
  x5c: string[];
}

interface StoredKey {
  kid: string;
  createdAt: string;
  privateJwk: JWK;
  certificateDer: string;
}

interface KeyFile {
  /** Newest first; the first key signs, the others are still published (rollover). */
  keys: StoredKey[];
}

/**
 * The tenant's token-signing keys. Like Entra, each key has a self-signed certificate and its `kid` is
 * the certificate's SHA-1 thumbprint (also published as `x5t`). {@link rotate} adds a new signing key
 * and keeps the earlier ones in the JWKS for as long as a token they signed can still be valid.
 */
export class SigningKeys {
  private keys: StoredKey[];
  private readonly privateKeys = new Map<string, KeyObject>();
  private version = 0;

  private constructor(
    private readonly file: string,
    file_: KeyFile,
    private readonly keepRetiredForInMs: () => number,
  ) {
    this.keys = file_.keys;
  }

  /**
   * Loads the keys from `file`, creating a first key if there is none. `keepRetiredForInMs`: how long a key stays
   * published after it stopped signing — the longest token lifetime plus the verifiers' clock skew, so no token
   * still in use loses its key.
   */
  static async loadOrCreate(file: string, keepRetiredForInMs: () => number): Promise<SigningKeys> {
    if (existsSync(file)) {
      return new SigningKeys(file, JSON.parse(readFileSync(file, 'utf8')) as KeyFile, keepRetiredForInMs);
    }
    const keys = new SigningKeys(file, { keys: [] }, keepRetiredForInMs);
    await keys.rotate();
    return keys;
  }

  /** The key that signs new tokens. */
  get current(): { kid: string; privateKey: KeyObject } {
    const key = this.keys[0]!;
    let privateKey = this.privateKeys.get(key.kid);
    if (!privateKey) {
      privateKey = createPrivateKey({ key: key.privateJwk as JsonWebKey, format: 'jwk' });
      this.privateKeys.set(key.kid, privateKey);
    }
    return { kid: key.kid, privateKey };
  }

  /** Changes whenever the published key set changes (lets verifiers cache the JWKS). */
  get jwksVersion(): number {
    return this.version;
  }

  /** The JWKS document: every published key, the signing key first. */
  jwks(): { keys: PublishedKey[] } {
    return {
      keys: this.keys.map((key) => {
        const publicJwk = createPublicKey({ key: key.privateJwk as JsonWebKey, format: 'jwk' }).export({
          format: 'jwk',
        });
        return {
          kty: 'RSA',
          use: 'sig',
          kid: key.kid,
          x5t: key.kid,
          n: publicJwk.n!,
          e: publicJwk.e!,
          x5c: [key.certificateDer],
        };
      }),
    };
  }

  /**
   * Starts a rollover: a new key signs from `now` on; the previous signing key stays published, and so does each
   * older key until `keepRetiredForInMs` after it stopped signing (when the next key was created). Entra, too,
   * retires a key long after its last token expired: two rollovers in a row must not strand the running services,
   * whose cached tokens (valid for hours) the older key signed. Returns the new `kid`.
   */
  async rotate(now = Date.now()): Promise<string> {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const cryptoKeys = {
      privateKey: await webcrypto.subtle.importKey(
        'jwk',
        privateKey.export({ format: 'jwk' }),
        { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
        false,
        ['sign'],
      ),
      publicKey: await webcrypto.subtle.importKey(
        'jwk',
        publicKey.export({ format: 'jwk' }),
        { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
        true,
        ['verify'],
      ),
    };
    const x509 = await loadX509();
    const notBefore = new Date(Date.now() - 60_000);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=accounts.local-azure.keyless',
      notBefore,
      notAfter: new Date(notBefore.getTime() + 5 * 365 * 24 * 3600 * 1000),
      signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      keys: cryptoKeys as unknown as Parameters<Awaited<ReturnType<typeof loadX509>>['X509CertificateGenerator']['createSelfSigned']>[0]['keys'],
    });
    const der = Buffer.from(cert.rawData);
    const kid = createHash('sha1').update(der).digest('base64url');
    // Key i stopped signing when key i − 1 was created; the signing key (i = 0) stops now.
    const stillNeeded = this.keys.filter((_, index) => index === 0 || Date.parse(this.keys[index - 1]!.createdAt) + this.keepRetiredForInMs() > now);
    this.keys = [
      { kid, createdAt: new Date(now).toISOString(), privateJwk: privateKey.export({ format: 'jwk' }) as JWK, certificateDer: der.toString('base64') },
      ...stillNeeded,
    ];
    this.version++;
    this.save();
    return kid;
  }

  private save(): void {
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify({ keys: this.keys } satisfies KeyFile, null, 2), { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}
