/**
 * End to end, flow 3: a key rotation as partners live it, with their clients' caches (3 s here,
 * minutes in real life). Publish ahead, sign later; keep the old key while its tokens live; a
 * compromised key stops verifying once its removal is published and the caches have expired.
 */
import { KeyNotFoundError } from '../../hsm/index.js';
import { SIGN_VERIFY, startArchitecture, startPartners, type Architecture, type Partners } from '../support/architecture.js';
import { X509Certificate } from 'node:crypto';
import { publicKeyObject, type PublicJwk } from '../../shared/jwks/validate.js';
import { eventually, rawRequest } from '../support/http.js';
import { describeWithHsm } from '../support/softhsm.js';

const CACHE_SECONDS = 3;

describeWithHsm('end to end: rotating a signing key', () => {
  let architecture: Architecture;
  let partners: Partners;

  beforeAll(async () => {
    // With certificates on: every signing key is published with its chain from the bank's PKI.
    architecture = await startArchitecture({ retainDeactivated: '1h', certificates: true });
    partners = startPartners(architecture.jwksUrl, CACHE_SECONDS);
  }, 90_000);
  afterAll(async () => {
    await partners?.close();
    await architecture?.close();
  });

  /** Kids served with a chain whose leaf holds the key and verifies up to the bank's root. */
  async function chainedKids(): Promise<string[]> {
    const response = await rawRequest(architecture.jwksGet.url, '/jwks');
    const anchor = new X509Certificate(architecture.pki!.anchorPem);
    const keys = (JSON.parse(response.body.toString()) as { keys: PublicJwk[] }).keys;
    return keys
      .filter((key) => {
        const chain = (key.x5c ?? []).map((der) => new X509Certificate(Buffer.from(der, 'base64')));
        const [leaf, issuing] = chain;
        if (leaf === undefined || issuing === undefined) return false;
        const sameKey = leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(publicKeyObject(key).export({ type: 'spki', format: 'der' }));
        return sameKey && leaf.verify(issuing.publicKey) && issuing.verify(anchor.publicKey);
      })
      .map((key) => key.kid)
      .sort();
  }

  /** Every client verifies the token, each with its own cache state; resolves to the kids used. */
  async function everyClientVerifies(token: string): Promise<string[]> {
    return Promise.all(partners.names.map((name) => partners.verify(name, token)));
  }

  /** Each client in turn, until its cache (or, for jose, its refetch cooldown) lets it see the change. */
  async function everyClientEventually(token: string, outcome: 'verifies' | 'rejects'): Promise<void> {
    for (const name of partners.names) {
      const wanted = outcome === 'verifies';
      await eventually(async () => (await partners.verify(name, token).then(() => true, () => false)) === wanted, (CACHE_SECONDS + 10) * 1000);
    }
  }

  it('goes from the old key to the new one without a token failing to verify, and drops a compromised key', async () => {
    architecture.createKey({ name: 'core-signing', algorithm: 'ec', curveid: 'secp384r1', usageMask: SIGN_VERIFY });
    const v0 = architecture.createKey({ name: 'payments-signing', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN_VERIFY });
    await Promise.all([architecture.certifyKey(v0.id), ...architecture.publisher.emulator.keys.list().filter((key) => key.name === 'core-signing').map((key) => architecture.certifyKey(key.id))]);
    const oldSigner = await architecture.hsm.signer({ label: 'payments-signing', alg: 'ES256' });
    const stableKid = (await architecture.hsm.signer({ label: 'core-signing', alg: 'ES384' })).kid;
    await architecture.waitUntilServed([oldSigner.kid, stableKid]);
    const oldToken = await oldSigner.signJwt({ sub: 'before-rotation' });
    expect(await everyClientVerifies(oldToken)).toEqual(partners.names.map(() => oldSigner.kid));

    // 1. CipherTrust rotates; the event is late (the rotation pipeline has not posted it yet).
    architecture.publisher.emulator.setEventSink(undefined);
    const v1 = architecture.publisher.emulator.keys.rotate(v0.id);
    expect(v1.version).toBe(1);
    await architecture.certifyKey(v1.id);
    const versions = (await architecture.hsm.keys('payments-signing')).map((key) => key.kid);
    const newKid = versions.find((kid) => kid !== oldSigner.kid)!;
    expect(versions).toHaveLength(2); // both versions are in the HSM under one label
    const newSigner = await architecture.hsm.signer({ label: 'payments-signing', alg: 'ES256', kid: newKid });
    const newToken = await newSigner.signJwt({ sub: 'after-rotation' });
    // Signed before it is published: partners cannot verify it. This is why apps sign later.
    await expect(partners.verify('jose', newToken)).rejects.toThrow(/no applicable key/i);
    await expect(partners.verify('pyjwt', newToken)).rejects.toThrow(/Unable to find a signing key/);

    // 2. The event arrives: the new version is published next to the old one.
    architecture.publisher.emulator.setEventSink(architecture.publisher.keyRotated.url);
    expect((await architecture.publisher.sendEvent('com.thalesgroup.ciphertrust.key.rotated')).status).toBe(200);
    await architecture.waitUntilServed([oldSigner.kid, newKid, stableKid]);
    // Clients that already looked for this kid wait out their refetch cooldown (jose: 30 s by
    // default, 0.5 s here) before they look again.
    await everyClientEventually(newToken, 'verifies');
    expect(await everyClientVerifies(newToken)).toEqual(partners.names.map(() => newKid));
    await eventually(async () => (await chainedKids()).join() === [oldSigner.kid, newKid, stableKid].sort().join(), 20_000);
    expect(await everyClientVerifies(oldToken)).toEqual(partners.names.map(() => oldSigner.kid));

    // 3. The old version is deactivated: kept for JWKS_RETAIN_DEACTIVATED, so its tokens live on,
    // also for clients that fetch the set afresh after their cache expired.
    architecture.publisher.emulator.keys.revoke(v0.id, 'Superseded');
    expect((await architecture.publisher.ping()).status).toBe(200);
    expect(await architecture.servedKids()).toEqual([oldSigner.kid, newKid, stableKid].sort());
    await new Promise((done) => setTimeout(done, CACHE_SECONDS * 1000 + 500));
    expect(await everyClientVerifies(oldToken)).toEqual(partners.names.map(() => oldSigner.kid));

    // 4. The old version turns out compromised: its removal is published at once, and once each
    // client's cache has expired its tokens no longer verify anywhere. The new key is unaffected.
    architecture.publisher.emulator.keys.revoke(v0.id, 'KeyCompromise');
    await architecture.waitUntilServed([newKid, stableKid]);
    await everyClientEventually(oldToken, 'rejects');
    expect(await everyClientVerifies(newToken)).toEqual(partners.names.map(() => newKid));

    // 5. Destroyed in CipherTrust, the old version leaves the HSM too: no app can sign with it.
    architecture.publisher.emulator.keys.destroy(v0.id);
    expect((await architecture.hsm.keys('payments-signing')).map((key) => key.kid)).toEqual([newKid]);
    await expect(architecture.hsm.signer({ label: 'payments-signing', alg: 'ES256', kid: oldSigner.kid })).rejects.toThrow(KeyNotFoundError);
  }, 120_000);
});
