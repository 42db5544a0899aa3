/**
 * The discovery document (issue 14) built from a served set: signing algorithms, ETag,
 * Last-Modified, built once per set. JWKS_ISSUER and JWKS_PUBLIC_URL are in config.test.ts.
 */
import { DiscoveryDocuments, discoveryDocument, signingAlgorithms } from '../../shared/serving/discovery-document.js';
import { representationOf } from '../../shared/serving/representation.js';

const ISSUER = 'https://auth.bank.example';
const PUBLIC_URL = 'https://partners.bank.example/jwks';

describe('signingAlgorithms', () => {
  it('lists the distinct alg of signing keys, sorted; encryption keys and keys without alg add nothing', () => {
    const keys = [
      { use: 'sig', alg: 'RS256' },
      { use: 'enc', alg: 'RSA-OAEP-256' },
      { use: 'sig', alg: 'ES256' },
      { alg: 'PS256' },
      { use: 'sig', alg: 'RS256' },
      { use: 'sig' },
      { use: 'enc', alg: 'ECDH-ES' },
    ];
    expect(signingAlgorithms(keys)).toEqual(['ES256', 'PS256', 'RS256']);
    expect(signingAlgorithms([{ use: 'enc', alg: 'RSA-OAEP' }])).toEqual([]);
  });

  it('builds the document with exactly issuer, jwks_uri and the algorithms, in that order', () => {
    const document = discoveryDocument({ issuer: ISSUER, jwksUri: PUBLIC_URL }, [{ use: 'sig', alg: 'ES384' }]);
    expect(JSON.stringify(document)).toBe(`{"issuer":"${ISSUER}","jwks_uri":"${PUBLIC_URL}","id_token_signing_alg_values_supported":["ES384"]}`);
  });
});

describe('DiscoveryDocuments', () => {
  const configuredAt = new Date('2026-12-01T08:00:00Z');
  const documents = (): DiscoveryDocuments => new DiscoveryDocuments({ issuer: ISSUER, jwksUri: PUBLIC_URL }, configuredAt);
  const setOf = (algs: string[], lastModified: Date) =>
    representationOf(Buffer.from(JSON.stringify({ keys: algs.map((alg, index) => ({ kty: 'EC', kid: `k${index}`, use: 'sig', alg })) })), lastModified);

  it('derives the document from the set, with an ETag of its own bytes', () => {
    const set = setOf(['ES256', 'ES384'], new Date('2026-12-02T09:00:00Z'));
    const document = documents().for(set);
    expect(JSON.parse(document.bytes.toString())).toEqual({ issuer: ISSUER, jwks_uri: PUBLIC_URL, id_token_signing_alg_values_supported: ['ES256', 'ES384'] });
    expect(document.etag).toBe(representationOf(document.bytes, new Date()).etag);
    expect(document.etag).not.toBe(set.etag);
    expect(document.lastModified).toEqual(set.lastModified);
  });

  it('is built once per set, and again for a new set', () => {
    const prepared = documents();
    const first = setOf(['ES256'], new Date('2026-12-02T09:00:00Z'));
    expect(prepared.for(first)).toBe(prepared.for(first));
    const second = setOf(['ES256', 'RS256'], new Date('2026-12-03T09:00:00Z'));
    const next = prepared.for(second);
    expect((JSON.parse(next.bytes.toString()) as { id_token_signing_alg_values_supported: string[] }).id_token_signing_alg_values_supported).toEqual(['ES256', 'RS256']);
    expect(next.etag).not.toBe(prepared.for(first).etag);
  });

  it('is never older than the configuration: a set written before start has the start as Last-Modified', () => {
    const set = setOf(['ES256'], new Date('2026-11-01T00:00:00Z'));
    expect(documents().for(set).lastModified).toEqual(configuredAt);
  });
});
