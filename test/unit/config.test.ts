import { ConfigError } from '../../shared/config/env.js';
import { loadServingConfig } from '../../shared/config/serving-config.js';

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadServingConfig(env, '/srv/app');
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('loadServingConfig', () => {
  it('defaults to ./data, five-minute caching and a one-second revalidation', () => {
    const config = loadServingConfig({}, '/srv/app');
    expect(config.store).toEqual({ kind: 'file', root: '/srv/app/data', timeoutMs: 5000 });
    expect(config.maxAgeSeconds).toBe(300);
    expect(config.revalidateMs).toBe(1000);
    expect(config.staleWhileRevalidateSeconds).toBeGreaterThan(0);
    expect(config.staleIfErrorSeconds).toBeGreaterThan(0);
  });

  it.each([
    ['file:///data', { kind: 'file', root: '/data', timeoutMs: 5000 }],
    ['/mnt/jwks', { kind: 'file', root: '/mnt/jwks', timeoutMs: 5000 }],
    ['relative/dir', { kind: 'file', root: '/srv/app/relative/dir', timeoutMs: 5000 }],
  ])('reads JWKS_STORE=%s as a directory', (value, expected) => {
    expect(loadServingConfig({ JWKS_STORE: value }, '/srv/app').store).toEqual(expected);
  });

  it('reads an s3:// location with endpoint, region and path-style addressing', () => {
    const config = loadServingConfig({ JWKS_STORE: 's3://bank-jwks/partners/prod', S3_ENDPOINT: 'https://s3.private.eu.cloud-object-storage.appdomain.cloud', AWS_REGION: 'eu-de' });
    expect(config.store).toMatchObject({
      kind: 's3',
      bucket: 'bank-jwks',
      prefix: 'partners/prod/',
      endpoint: 'https://s3.private.eu.cloud-object-storage.appdomain.cloud',
      region: 'eu-de',
      forcePathStyle: true,
    });
  });

  it('names every bad variable in one error', () => {
    const problems = problemsOf({
      JWKS_MAX_AGE: 'five minutes',
      JWKS_REVALIDATE_MS: '-1',
      LOG_LEVEL: 'loud',
      JWKS_STORE: 'ftp://host/dir',
      S3_FORCE_PATH_STYLE: 'yes',
    });
    expect(problems.map((problem) => problem.split(' ')[0])).toEqual([
      'JWKS_STORE',
      'JWKS_MAX_AGE',
      'JWKS_REVALIDATE_MS',
      'LOG_LEVEL',
    ]);
  });

  it.each([
    ['s3://Bad_Bucket/x', 'JWKS_STORE'],
    ['s3://bucket/../etc', 'JWKS_STORE'],
    ['file://otherhost/data', 'JWKS_STORE'],
  ])('refuses JWKS_STORE=%s', (value, variable) => {
    expect(problemsOf({ JWKS_STORE: value })[0]).toMatch(new RegExp(`^${variable} `));
  });

  it('refuses an S3 endpoint with embedded credentials, without echoing them', () => {
    const [problem] = problemsOf({ JWKS_STORE: 's3://bucket', S3_ENDPOINT: 'https://key:supersecret@minio.local' });
    expect(problem).toMatch(/^S3_ENDPOINT /);
    expect(problem).not.toContain('supersecret');
  });

  it('refuses to start a serving function that holds CipherTrust credentials', () => {
    const problems = problemsOf({ CIPHERTRUST_PASSWORD: 'hunter2', CIPHERTRUST_URL: 'https://cm' });
    expect(problems).toHaveLength(2);
    expect(problems.join()).toContain('CIPHERTRUST_PASSWORD');
    expect(problems.join()).not.toContain('hunter2');
  });
});

describe('JWKS_ISSUER and JWKS_PUBLIC_URL (discovery)', () => {
  const ISSUER = 'https://auth.bank.example';
  const PUBLIC_URL = 'https://partners.bank.example/jwks';

  it('leave discovery off when neither is set', () => {
    expect(loadServingConfig({}, '/srv/app').discovery).toBeUndefined();
    expect(loadServingConfig({ JWKS_ISSUER: ' ', JWKS_PUBLIC_URL: '' }, '/srv/app').discovery).toBeUndefined();
  });

  it.each([
    [ISSUER, PUBLIC_URL],
    // Kept exactly as given: clients compare the issuer to `iss` character for character.
    ['https://auth.bank.example/', PUBLIC_URL],
    ['https://bank.example/oidc/partners', 'https://bank.example:8443/keys/jwks.json'],
    ['http://localhost:8080', 'http://127.0.0.1:8080/jwks'],
    ['http://[::1]:9000', 'http://[::1]:9000/jwks'],
  ])('turn discovery on with issuer %s and jwks_uri %s', (issuer, jwksUri) => {
    expect(loadServingConfig({ JWKS_ISSUER: issuer, JWKS_PUBLIC_URL: jwksUri }, '/srv/app').discovery).toEqual({ issuer, jwksUri });
  });

  it('refuse one without the other, naming the missing one', () => {
    expect(problemsOf({ JWKS_ISSUER: ISSUER })).toEqual([expect.stringMatching(/^JWKS_PUBLIC_URL must be set when JWKS_ISSUER is/)]);
    expect(problemsOf({ JWKS_PUBLIC_URL: PUBLIC_URL })).toEqual([expect.stringMatching(/^JWKS_ISSUER must be set when JWKS_PUBLIC_URL is/)]);
  });

  it.each([
    ['JWKS_ISSUER', 'http://auth.bank.example', /must use https/],
    ['JWKS_ISSUER', 'auth.bank.example', /absolute https/],
    ['JWKS_ISSUER', '/issuer', /absolute https/],
    ['JWKS_ISSUER', 'ftp://auth.bank.example', /absolute https/],
    ['JWKS_ISSUER', 'https://auth.bank.example?tenant=1', /query/],
    ['JWKS_ISSUER', 'https://auth.bank.example#x', /fragment/],
    ['JWKS_PUBLIC_URL', 'http://10.0.0.5/jwks', /must use https/],
    ['JWKS_PUBLIC_URL', 'https://partners.bank.example/jwks?v=2', /query/],
    ['JWKS_PUBLIC_URL', 'https://partners.bank.example/jwks#', /fragment/],
  ])('refuse %s=%s', (name, value, reason) => {
    const env = { JWKS_ISSUER: ISSUER, JWKS_PUBLIC_URL: PUBLIC_URL, [name]: value };
    const problems = problemsOf(env);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${name} `));
    expect(problems[0]).toMatch(reason);
  });

  it('refuse a URL with credentials without echoing them', () => {
    const [problem] = problemsOf({ JWKS_ISSUER: ISSUER, JWKS_PUBLIC_URL: 'https://user:s3cret-value@partners.bank.example/jwks' });
    expect(problem).toMatch(/^JWKS_PUBLIC_URL must not embed credentials/);
    expect(problem).not.toContain('s3cret');
  });

  it('are refused with the other bad variables in one error', () => {
    expect(problemsOf({ JWKS_ISSUER: 'http://auth.bank.example', JWKS_PUBLIC_URL: 'nope', JWKS_MAX_AGE: '-1' }).map((problem) => problem.split(' ')[0])).toEqual([
      'JWKS_MAX_AGE',
      'JWKS_ISSUER',
      'JWKS_PUBLIC_URL',
    ]);
  });
});
