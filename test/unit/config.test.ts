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
