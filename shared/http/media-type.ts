/**
 * Content negotiation that never fails: the JWK media type unless the Accept header asks only for
 * plain application/json (as some older clients do). Never 406 (jwks-clients.md, pitfall 9).
 */
export function wantsPlainJson(accept: string | undefined, specificType: string): boolean {
  if (accept === undefined || !/application\/json/i.test(accept)) return false;
  let plainJson = false;
  for (const range of accept.slice(0, 1024).split(',')) {
    const [type = '', ...parameters] = range.split(';').map((part) => part.trim().toLowerCase());
    const q = parameters.find((parameter) => parameter.startsWith('q='));
    if (q !== undefined && !(Number(q.slice(2)) > 0)) continue;
    if (type === specificType || type === 'application/*' || type === '*/*') return false;
    if (type === 'application/json') plainJson = true;
  }
  return plainJson;
}
