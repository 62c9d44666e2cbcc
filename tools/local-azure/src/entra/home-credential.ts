import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomToken } from '../util/ids.js';
import { secretEquals } from '../util/secret-compare.js';

/**
 * The local tenant's sign-in secret for its users: random bytes created at first start in a file only the
 * local Azure's OS user can read (`data/home-credential`, mode 0600 in a 0700 folder). Whoever can read the
 * home can sign in as any of the tenant's users; that is the trust root of the local control plane, as the
 * signing key and the CA key in the same folder already are. It is never printed, logged or written to env files.
 *
 * The CLI presents it once, at sign-in (`login`), as the password of Entra's resource-owner password grant and
 * keeps the refresh token it gets back (see `cli/operator-session.ts`); access tokens come from the refresh token.
 */
export class HomeCredential {
  private constructor(private readonly secret: string) {}

  /** Reads the credential at `path`, creating it (mode 0600) on first start. */
  static loadOrCreate(path: string): HomeCredential {
    if (!existsSync(path)) {
      try {
        writeFileSync(path, `${randomToken(32)}\n`, { mode: 0o600, flag: 'wx' });
      } catch (error) {
        // Another process created it first: use theirs.
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    return new HomeCredential(readFileSync(path, 'utf8').trim());
  }

  /** Whether `presented` is the credential (constant-time). */
  matches(presented: string | undefined): boolean {
    return secretEquals(presented, this.secret);
  }
}
