/**
 * The path of a request target, exactly as sent (never percent-decoded, never normalised), without
 * its query. Absolute-form targets (RFC 9112 3.2.2) are reduced to their path.
 */
export function pathOf(target: string | undefined): string {
  let path = target ?? '/';
  if (!path.startsWith('/')) {
    const match = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(path);
    path = match === null ? '' : path.slice(match[0].length) || '/';
  }
  const query = path.indexOf('?');
  return query === -1 ? path : path.slice(0, query);
}
