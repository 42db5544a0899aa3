/**
 * A CM label selector as configured (`a=x` or `a=x,b=y`): every pair must match. Checked on our
 * side too, so a CM (or proxy) that ignored the `labels` query parameter cannot widen what we
 * publish to every key of the domain.
 */
export function matchesLabelSelector(labels: Readonly<Record<string, string>>, selector: string): boolean {
  return selector.split(',').every((pair) => {
    const separator = pair.indexOf('=');
    if (separator === -1) return Object.hasOwn(labels, pair);
    return labels[pair.slice(0, separator)] === pair.slice(separator + 1);
  });
}
