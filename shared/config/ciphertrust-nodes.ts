import type { EnvReader } from './env.js';

const NAME = 'CIPHERTRUST_URL';

/**
 * CIPHERTRUST_URL: one base URL (a single CM, or a load balancer in front of a cluster) or a
 * comma-separated list of a cluster's node URLs, tried in the order given. Each item is checked as
 * the single URL always was; empty items, duplicates and a mix of http and https are refused.
 * Returns the base URLs without trailing slashes ([] after a problem).
 */
export function readCipherTrustNodes(env: EnvReader, allowInsecure: boolean): string[] {
  const value = env.raw(NAME);
  if (value === undefined) {
    env.problem(NAME, 'must be set (https://<CipherTrust Manager host>, or a comma-separated list of its cluster nodes)');
    return [];
  }
  const items = value.split(',').map((item) => item.trim());
  if (items.some((item) => item === '')) {
    env.problem(NAME, 'has an empty item in its list (two commas, or a comma at an end)');
    return [];
  }
  const nodes: string[] = [];
  for (const item of items) {
    const node = checkNode(env, item, allowInsecure, items.length > 1);
    if (node === undefined) return [];
    nodes.push(node);
  }
  const normalized = nodes.map((node) => new URL(node).href.replace(/\/+$/, ''));
  const duplicate = normalized.find((node, index) => normalized.indexOf(node) !== index);
  if (duplicate !== undefined) {
    env.problem(NAME, `lists the node ${duplicate} more than once`);
    return [];
  }
  if (new Set(nodes.map((node) => new URL(node).protocol)).size > 1) {
    env.problem(NAME, 'mixes http:// and https:// nodes');
    return [];
  }
  return nodes;
}

/** One node's base URL, or undefined after recording the problem (naming the item in a list). */
function checkNode(env: EnvReader, item: string, allowInsecure: boolean, inList: boolean): string | undefined {
  const where = inList ? ` (item ${shortened(item)})` : '';
  const url = URL.canParse(item) ? new URL(item) : undefined;
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    env.problem(NAME, `must be an http:// or https:// URL${inList ? ' or a comma-separated list of them' : ''} (got ${shortened(item)})`);
    return undefined;
  }
  if (url.username !== '' || url.password !== '') {
    // The item is not echoed: it holds a credential.
    env.problem(NAME, 'must not embed credentials');
    return undefined;
  }
  if (url.protocol === 'http:' && !allowInsecure) {
    env.problem(NAME, `must be https:// (plain http only with CIPHERTRUST_ALLOW_INSECURE_HTTP=true, for tests)${where}`);
    return undefined;
  }
  if (url.search !== '' || url.hash !== '') {
    env.problem(NAME, `must not have a query or fragment${where}`);
    return undefined;
  }
  return item.replace(/\/+$/, '');
}

/** Echoed to help the operator, shortened like every other echoed value. */
function shortened(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 12)}...` : value);
}
