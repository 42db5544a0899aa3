import { isNotModified } from '../../shared/http/conditional.js';
import { wantsPlainJson } from '../../shared/http/media-type.js';
import { pathOf } from '../../shared/http/request-target.js';

describe('pathOf', () => {
  it.each([
    ['/jwks', '/jwks'],
    ['/jwks?x=1&y=2', '/jwks'],
    ['/jwk/%2e%2e', '/jwk/%2e%2e'],
    ['http://partner-gw.example:8080/jwks?x', '/jwks'],
    ['https://h', '/'],
    [undefined, '/'],
    ['*', ''],
  ])('reads %p as %p, without decoding', (target, path) => {
    expect(pathOf(target)).toBe(path);
  });
});

describe('wantsPlainJson', () => {
  const set = 'application/jwk-set+json';
  it.each([
    [undefined, false],
    ['application/json', true],
    ['application/json; charset=utf-8', true],
    ['application/json, application/jwk-set+json', false],
    ['application/jwk-set+json;q=0, application/json', true],
    ['application/json, */*;q=0.1', false],
    ['application/*', false],
    ['text/html', false],
    ['APPLICATION/JSON', true],
  ])('Accept %p -> plain JSON: %p', (accept, expected) => {
    expect(wantsPlainJson(accept, set)).toBe(expected);
  });
});

describe('isNotModified', () => {
  const etag = '"abc"';
  const lastModified = new Date('2026-11-01T10:00:00.400Z');
  it.each([
    [{ 'if-none-match': '"abc"' }, true],
    [{ 'if-none-match': 'W/"abc"' }, true],
    [{ 'if-none-match': '"x", "abc"' }, true],
    [{ 'if-none-match': '*' }, true],
    [{ 'if-none-match': '"abcd"' }, false],
    [{ 'if-none-match': 'abc' }, false],
    [{ 'if-none-match': '' }, false],
    [{ 'if-modified-since': 'Sun, 01 Nov 2026 10:00:00 GMT' }, true],
    [{ 'if-modified-since': 'Sun, 01 Nov 2026 09:59:59 GMT' }, false],
    [{ 'if-modified-since': 'not a date' }, false],
    [{ 'if-none-match': '"other"', 'if-modified-since': 'Sun, 01 Nov 2026 10:00:00 GMT' }, false],
  ])('%p -> %p', (headers, expected) => {
    expect(isNotModified(headers, etag, lastModified)).toBe(expected);
  });
});
