/**
 * Who may log in: users, each created in one domain (its auth domain, root by default) and member
 * of the domains it may work in; and registered clients, each bound to a client certificate.
 *
 * CM registers a client with a registration token, and the client then authenticates with the
 * certificate it got (or, with `authentication_mode: dn`, any certificate with the registered
 * subject DN from a CA trusted for client authentication in the domain; thalesdocs client
 * management, M). The emulator binds a client id to a certificate's CN (the `dn` mode, reduced to
 * the CN) or to its SHA-256 fingerprint (the certificate issued at registration).
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { invalidParam } from './errors.js';
import type { ClientRegistration, EmulatorUser } from './types.js';

export interface User {
  readonly username: string;
  readonly authDomain: string;
  readonly domains: ReadonlySet<string>;
}

interface StoredUser extends User {
  readonly password: string;
}

interface Client {
  readonly clientId: string;
  readonly commonName: string | undefined;
  /** Lower-case hex without separators. */
  readonly fingerprint: string | undefined;
  readonly domain: string;
}

/** What the TLS layer knows about the caller's client certificate. */
export interface ClientCertificate {
  /** Presented and signed by the emulator's CA. */
  readonly authorized: boolean;
  readonly commonName: string | undefined;
  /** SHA-256 fingerprint as Node gives it (AB:CD:...), when a certificate was presented. */
  readonly fingerprint256?: string | undefined;
}

export const ROOT_DOMAIN = 'root';

export class Accounts {
  private readonly users = new Map<string, StoredUser>();
  private readonly clients = new Map<string, Client>();

  constructor(users: Readonly<Record<string, string | EmulatorUser>>, clients: readonly ClientRegistration[] = []) {
    for (const [username, spec] of Object.entries(users)) {
      const user = typeof spec === 'string' ? { password: spec } : spec;
      const authDomain = user.authDomain ?? ROOT_DOMAIN;
      this.users.set(username, { username, password: user.password, authDomain, domains: new Set([authDomain, ...(user.domains ?? [])]) });
    }
    for (const client of clients) this.registerClient(client);
  }

  /** The user, if the password is right and the user was created in `authDomain`. */
  passwordLogin(username: string, password: string, authDomain: string): User | undefined {
    const user = this.users.get(username);
    // Compare digests in constant time, and do the work even for an unknown user.
    const digest = (value: string): Buffer => createHash('sha256').update(value).digest();
    const same = timingSafeEqual(digest(password), digest(user?.password ?? randomUUID()));
    return user !== undefined && same && user.authDomain === authDomain ? user : undefined;
  }

  user(username: string): User | undefined {
    return this.users.get(username);
  }

  /** Registers a client bound to a certificate CN or fingerprint; returns its client id. */
  registerClient(registration: ClientRegistration): string {
    const { commonName } = registration;
    const fingerprint = registration.certificateFingerprint === undefined ? undefined : normalizeFingerprint(registration.certificateFingerprint);
    if (commonName === undefined && fingerprint === undefined) throw invalidParam('a client registration needs a commonName or a certificateFingerprint');
    if (fingerprint !== undefined && !/^[0-9a-f]{64}$/.test(fingerprint)) throw invalidParam('certificateFingerprint must be a SHA-256 fingerprint (64 hex digits)');
    const clientId = registration.clientId ?? randomUUID();
    this.clients.set(clientId, { clientId, commonName, fingerprint, domain: registration.domain ?? ROOT_DOMAIN });
    return clientId;
  }

  /** The registered client, if the certificate presented is the one bound to it. */
  client(clientId: string, certificate: ClientCertificate): { clientId: string; domain: string; name: string } | undefined {
    const client = this.clients.get(clientId);
    if (client === undefined || !certificate.authorized) return undefined;
    const presented = certificate.fingerprint256 === undefined ? undefined : normalizeFingerprint(certificate.fingerprint256);
    const matches = client.fingerprint !== undefined ? client.fingerprint === presented : client.commonName === certificate.commonName;
    return matches ? { clientId, domain: client.domain, name: client.commonName ?? clientId } : undefined;
  }
}

function normalizeFingerprint(value: string): string {
  return value.replace(/:/g, '').toLowerCase();
}
