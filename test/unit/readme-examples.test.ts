import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const readme = readFileSync(`${repo}/README.md`, 'utf8');

/** The README's snippets are the files in examples/, which test/e2e/examples.test.ts runs. */
describe('README examples', () => {
  const files = readdirSync(`${repo}/examples`).sort();

  it('shows every example', () => {
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) expect(readme).toContain(`<!-- example: examples/${file} -->`);
  });

  it.each(files)('shows examples/%s exactly as it is', (file) => {
    const body = readFileSync(`${repo}/examples/${file}`, 'utf8').replace(/\n+$/, '');
    const marker = `<!-- example: examples/${file} -->\n`;
    const start = readme.indexOf(marker) + marker.length;
    const fence = readme.indexOf('\n', start) + 1;
    const end = readme.indexOf('\n```', fence);
    expect(readme.slice(fence, end)).toBe(body);
  });
});
