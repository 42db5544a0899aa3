import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../shared/config/env.js';
import { loadKeyRotatedConfig, loadPublisherConfig } from '../../shared/config/publisher-config.js';
import { certificateFor, testAuthority } from '../support/certificates.js';

const dir = mkdtempSync(join(tmpdir(), 'publisher-config-'));
const pem = join(dir, 'ca.pem');
writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
const notPem = join(dir, 'not.pem');
writeFileSync(notPem, 'hello');

const minimal = { CIPHERTRUST_URL: 'https://cm.bank.internal/', CIPHERTRUST_USERNAME: 'jwks-publisher', CIPHERTRUST_PASSWORD: 'pw' };

function problems(env: Record<string, string>): string[] {
  try {
    loadKeyRotatedConfig(env, '/srv');
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

describe('publisher configuration', () => {
  it('has the documented defaults', () => {
    const config = loadPublisherConfig(minimal, '/srv');
    expect(config.ciphertrust).toMatchObject({
      url: 'https://cm.bank.internal',
      grant: { type: 'password', username: 'jwks-publisher', password: 'pw' },
      keySelector: 'jwks=publish',
      domain: undefined,
      caPem: undefined,
    });
    expect(config.retainDeactivatedMs).toBe(48 * 3_600_000);
    expect(config.allowEmpty).toBe(false);
    expect(config.maxKeys).toBe(20);
    expect(config.maxSetBytes).toBe(4 * 1024 * 1024);
    expect(config.store).toEqual({ kind: 'file', root: '/srv/data', timeoutMs: 5000 });
  });

  it.each([
    ['48h', 48 * 3_600_000],
    ['30m', 1_800_000],
    ['2d', 172_800_000],
    ['90', 90_000],
    ['0', 0],
  ])('reads JWKS_RETAIN_DEACTIVATED=%s', (value, ms) => {
    expect(loadPublisherConfig({ ...minimal, JWKS_RETAIN_DEACTIVATED: value }, '/srv').retainDeactivatedMs).toBe(ms);
  });

  it('reads JWKS_MAX_KEYS', () => {
    expect(loadPublisherConfig({ ...minimal, JWKS_MAX_KEYS: '10' }, '/srv').maxKeys).toBe(10);
  });

  it('chooses the grant from what is configured', () => {
    expect(loadPublisherConfig({ CIPHERTRUST_URL: 'https://cm', CIPHERTRUST_REFRESH_TOKEN: 'rt' }).ciphertrust.grant).toEqual({ type: 'refresh_token', refreshToken: 'rt' });
    const mtls = loadPublisherConfig({ CIPHERTRUST_URL: 'https://cm', CIPHERTRUST_CLIENT_CERT_FILE: pem, CIPHERTRUST_CLIENT_KEY_FILE: pem, CIPHERTRUST_CLIENT_ID: 'c-1' });
    expect(mtls.ciphertrust.grant).toEqual({ type: 'client_credential', clientId: 'c-1' });
    expect(mtls.ciphertrust.clientCertPem).toContain('BEGIN CERTIFICATE');
  });

  it('reads CIPHERTRUST_AUTH_DOMAIN and CIPHERTRUST_DOMAIN for password logins', () => {
    const config = loadPublisherConfig({ ...minimal, CIPHERTRUST_AUTH_DOMAIN: 'partners', CIPHERTRUST_DOMAIN: 'audit' });
    expect(config.ciphertrust.grant).toEqual({ type: 'password', username: 'jwks-publisher', password: 'pw', authDomain: 'partners' });
    expect(config.ciphertrust.domain).toBe('audit');
  });

  const refresh = { CIPHERTRUST_PASSWORD: '', CIPHERTRUST_USERNAME: '', CIPHERTRUST_REFRESH_TOKEN: 'rt' };
  const mtls = { CIPHERTRUST_PASSWORD: '', CIPHERTRUST_USERNAME: '', CIPHERTRUST_CLIENT_CERT_FILE: pem, CIPHERTRUST_CLIENT_KEY_FILE: pem };
  it.each([
    [{ ...refresh, CIPHERTRUST_DOMAIN: 'partners' }, 'CIPHERTRUST_DOMAIN must not be set with CIPHERTRUST_REFRESH_TOKEN: a refresh token works in the domain it was issued for, and CipherTrust Manager revokes it for good'],
    [{ ...refresh, CIPHERTRUST_AUTH_DOMAIN: 'partners' }, 'CIPHERTRUST_AUTH_DOMAIN must not be set with CIPHERTRUST_REFRESH_TOKEN'],
    [mtls, 'CIPHERTRUST_CLIENT_ID must be set for the client_credential grant'],
    [{ ...mtls, CIPHERTRUST_CLIENT_ID: 'c-1', CIPHERTRUST_DOMAIN: 'partners' }, 'CIPHERTRUST_DOMAIN must not be set with the client_credential grant: CipherTrust Manager does not support domain with it'],
    [{ ...mtls, CIPHERTRUST_CLIENT_ID: 'c-1', CIPHERTRUST_AUTH_DOMAIN: 'partners' }, 'CIPHERTRUST_AUTH_DOMAIN must not be set with the client_credential grant'],
    [{ CIPHERTRUST_CLIENT_ID: 'c-1' }, 'CIPHERTRUST_CLIENT_ID is only for the client_credential grant'],
  ])('refuses %j where CM would not honour it', (overrides, expected) => {
    expect(problems({ ...minimal, ...overrides }).join('\n')).toContain(expected);
  });

  it('keeps a password exactly as given', () => {
    expect(loadPublisherConfig({ ...minimal, CIPHERTRUST_PASSWORD: ' pass word ' }).ciphertrust.grant).toMatchObject({ password: ' pass word ' });
  });

  it.each([
    [{ CIPHERTRUST_URL: '' }, 'CIPHERTRUST_URL must be set'],
    [{ CIPHERTRUST_URL: 'http://cm.bank.internal' }, 'CIPHERTRUST_URL must be https://'],
    [{ CIPHERTRUST_URL: 'https://cm/?x=1' }, 'CIPHERTRUST_URL must not have a query'],
    [{ CIPHERTRUST_URL: 'https://admin:pw@cm' }, 'CIPHERTRUST_URL must not embed credentials'],
    [{ CIPHERTRUST_USERNAME: '', CIPHERTRUST_PASSWORD: 'x' }, 'CIPHERTRUST_USERNAME must be set'],
    [{ CIPHERTRUST_PASSWORD: '', CIPHERTRUST_USERNAME: 'u' }, 'CIPHERTRUST_PASSWORD or CIPHERTRUST_REFRESH_TOKEN must be set'],
    [{ CIPHERTRUST_REFRESH_TOKEN: 'rt' }, 'CIPHERTRUST_PASSWORD and CIPHERTRUST_REFRESH_TOKEN are both set'],
    [{ CIPHERTRUST_CA_FILE: join(dir, 'missing.pem') }, 'CIPHERTRUST_CA_FILE cannot be read'],
    [{ CIPHERTRUST_CA_FILE: notPem }, 'CIPHERTRUST_CA_FILE does not name a PEM file'],
    [{ CIPHERTRUST_CLIENT_CERT_FILE: pem }, 'CIPHERTRUST_CLIENT_CERT_FILE and CIPHERTRUST_CLIENT_KEY_FILE must be set together'],
    [{ CIPHERTRUST_KEY_SELECTOR: 'jwks publish' }, 'CIPHERTRUST_KEY_SELECTOR must be a label selector'],
    [{ JWKS_RETAIN_DEACTIVATED: '2 days' }, 'JWKS_RETAIN_DEACTIVATED must be a duration'],
    [{ JWKS_ALLOW_EMPTY: 'yes' }, 'JWKS_ALLOW_EMPTY must be "true" or "false"'],
    [{ JWKS_MAX_KEYS: '0' }, 'JWKS_MAX_KEYS must be an integer from 1 to 1000 (got "0")'],
    [{ JWKS_MAX_KEYS: 'ten' }, 'JWKS_MAX_KEYS must be an integer from 1 to 1000'],
    [{ JWKS_MAX_KEYS: '10.5' }, 'JWKS_MAX_KEYS must be an integer from 1 to 1000'],
    [{ KEY_ROTATED_SHARED_SECRET: 'short' }, 'KEY_ROTATED_SHARED_SECRET must be at least 32 characters'],
  ])('refuses %j naming the variable', (overrides, expected) => {
    expect(problems({ ...minimal, ...overrides }).join('\n')).toContain(expected);
  });

  it('takes a comma-separated list of CM cluster nodes, in order; one URL is a one-node list', () => {
    const cluster = loadPublisherConfig({ ...minimal, CIPHERTRUST_URL: ' https://cm-1.bank.internal/ , https://cm-2.bank.internal:8443,https://cm-3.bank.internal/api/ ' }, '/srv');
    expect(cluster.ciphertrust.urls).toEqual(['https://cm-1.bank.internal', 'https://cm-2.bank.internal:8443', 'https://cm-3.bank.internal/api']);
    expect(cluster.ciphertrust.url).toBe('https://cm-1.bank.internal');
    expect(cluster.ciphertrust.nodeDownMs).toBe(60_000);
    expect(loadPublisherConfig(minimal, '/srv').ciphertrust.urls).toEqual(['https://cm.bank.internal']);
    expect(loadPublisherConfig({ ...minimal, CIPHERTRUST_NODE_DOWN_FOR: '5s' }, '/srv').ciphertrust.nodeDownMs).toBe(5000);
  });

  it.each([
    ['https://cm-1,,https://cm-2', 'CIPHERTRUST_URL has an empty item'],
    ['https://cm-1,', 'CIPHERTRUST_URL has an empty item'],
    ['https://cm-1,https://CM-1/', 'CIPHERTRUST_URL lists the node https://cm-1 more than once'],
    ['https://cm-1,http://cm-2', 'CIPHERTRUST_URL must be https://'],
    ['https://cm-1,cm-2', 'CIPHERTRUST_URL must be an http:// or https:// URL or a comma-separated list of them (got "cm-2")'],
    ['https://cm-1,https://cm-2/?x=1', 'CIPHERTRUST_URL must not have a query or fragment (item "https://cm-2/?x=1")'],
    ['https://cm-1,https://admin:pw@cm-2', 'CIPHERTRUST_URL must not embed credentials'],
  ])('refuses the node list %j naming the variable', (value, expected) => {
    expect(problems({ ...minimal, CIPHERTRUST_URL: value }).join('\n')).toContain(expected);
  });

  it('refuses a node list mixing http and https even where plain http is allowed', () => {
    const found = problems({ ...minimal, CIPHERTRUST_URL: 'http://127.0.0.1:9,https://127.0.0.1:10', CIPHERTRUST_ALLOW_INSECURE_HTTP: 'true' });
    expect(found).toEqual(['CIPHERTRUST_URL mixes http:// and https:// nodes']);
    expect(problems({ ...minimal, CIPHERTRUST_NODE_DOWN_FOR: '0s' }).join()).toContain('CIPHERTRUST_NODE_DOWN_FOR must be a duration');
  });

  it('allows plain http only with CIPHERTRUST_ALLOW_INSECURE_HTTP=true', () => {
    expect(problems({ ...minimal, CIPHERTRUST_URL: 'http://127.0.0.1:9', CIPHERTRUST_ALLOW_INSECURE_HTTP: 'true' })).toEqual([]);
  });

  it('never echoes a secret in a problem', () => {
    const secret = 'S3cr3t-passw0rd-that-must-not-leak';
    const found = problems({ CIPHERTRUST_URL: 'ftp://x', CIPHERTRUST_PASSWORD: secret, CIPHERTRUST_REFRESH_TOKEN: secret, KEY_ROTATED_SHARED_SECRET: 'abc' });
    expect(found.length).toBeGreaterThan(1);
    expect(found.join('\n')).not.toContain(secret);
  });
});

describe('JWKS_CERT_TRUST_ANCHORS', () => {
  const caCert = join(dir, 'anchors.pem');
  const leafCert = join(dir, 'leaf.pem');
  beforeAll(async () => {
    const ca = await testAuthority();
    writeFileSync(caCert, ca.anchorPem + ca.issuingPem);
    writeFileSync(leafCert, await certificateFor(ca, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey));
    await ca.remove();
  }, 60_000);

  it('is empty when unset, and reads every CA of a PEM bundle', () => {
    expect(loadPublisherConfig(minimal, '/srv').certificateAnchors).toEqual([]);
    expect(loadPublisherConfig({ ...minimal, JWKS_CERT_TRUST_ANCHORS: caCert }, '/srv').certificateAnchors.map((anchor) => anchor.ca)).toEqual([true, true]);
  });

  it.each([
    ['a missing file', join(dir, 'absent.pem'), /JWKS_CERT_TRUST_ANCHORS cannot be read/],
    ['a file that is not PEM', notPem, /JWKS_CERT_TRUST_ANCHORS does not name a PEM file/],
    ['an unreadable certificate', pem, /JWKS_CERT_TRUST_ANCHORS must be a PEM bundle of CA certificates \(0 read, 1 unreadable\)/],
    ['a certificate that is not a CA', leafCert, /JWKS_CERT_TRUST_ANCHORS holds a certificate that is not a CA/],
  ])('refuses %s, naming the variable', (_case, file, message) => {
    expect(problems({ ...minimal, JWKS_CERT_TRUST_ANCHORS: file })).toEqual([expect.stringMatching(message)]);
  });
});

