import { describe, expect, it } from 'vitest';
import { pathTrick, plainCacheTarget } from '../../shared/input-guard.ts';

/**
 * The one parser both hit fast paths (edge and origin) use to tell a plain
 * `GET /api/v1/cache/{namespace}/{key}` target from one the full path must
 * answer. Taking a target wrongly would skip a guard; leaving one is only slower.
 */
describe('plain cache read target', () => {
  const taken: [string, string, string][] = [
    ['/api/v1/cache/ns/key', 'ns', 'key'],
    ['/api/v1/cache/user_1-a/k.1', 'user_1-a', 'k.1'],
    ['/api/v1/cache/ns/...', 'ns', '...'],
    ['/api/v1/cache/ns/.k', 'ns', '.k'],
    ["/api/v1/cache/ns/a~b!$&'()*+,;=:@c", 'ns', "a~b!$&'()*+,;=:@c"],
    [`/api/v1/cache/${'n'.repeat(64)}/k`, 'n'.repeat(64), 'k'],
  ];
  const left: [string, string][] = [
    ['/api/v1/cache/ns/key?', 'an empty query'],
    ['/api/v1/cache/ns/key?ttl=5', 'a query'],
    ['/api/v1/cache/ns/key#f', 'a fragment'],
    ['/api/v1/cache/ns/%6bey', 'an escape the router decodes'],
    ['/api/v1/cache/ns/%2e%2e', 'an encoded dot segment'],
    ['/api/v1/cache/ns/a%2Fb', 'an encoded separator'],
    ['/api/v1/cache/ns/.', 'a dot segment'],
    ['/api/v1/cache/ns/..', 'a dot-dot segment'],
    ['/api/v1/cache/./ns', 'a dot namespace'],
    ['/api/v1/cache/../ns', 'a dot-dot namespace'],
    ['/api/v1/cache/ns/a\\b', 'a backslash'],
    ['/api/v1/cache/ns/key/', 'a trailing slash'],
    ['/api/v1/cache/ns/a/b', 'a third segment'],
    ['/api/v1/cache/ns/', 'an empty key'],
    ['/api/v1/cache//key', 'an empty namespace'],
    ['/api/v1/cache/ns', 'no key'],
    ['/api/v1/cache/Bad/key', 'a namespace the key rules refuse'],
    [`/api/v1/cache/${'n'.repeat(65)}/k`, 'a namespace over 64 characters'],
    [`/api/v1/cache/ns/${'k'.repeat(513)}`, 'a key over 512 bytes'],
    ['/api/v1/cache/ns/a b', 'a space'],
    ['/api/v1/cache/ns/ключ', 'a raw non-ASCII character'],
    ['/api/v1/cache/ns/batch/get', 'the batch route'],
    ['/api/v1/cache/ns/key\u0000', 'a NUL'],
    ['/API/v1/cache/ns/key', 'another prefix'],
    ['http://host/api/v1/cache/ns/key', 'an absolute-form target (the caller takes its path first)'],
    ['/api/v1/purge', 'another route'],
  ];

  it('takes plain targets and names their namespace and key', () => {
    for (const [target, namespace, key] of taken) {
      expect([target, plainCacheTarget(target)]).toEqual([target, [namespace, key]]);
      // Nothing it takes is a path trick the full path's guard would refuse.
      expect([target, pathTrick(target)]).toEqual([target, null]);
    }
  });

  it('leaves every other target to the full path', () => {
    for (const [target, why] of left) expect([why, plainCacheTarget(target)]).toEqual([why, null]);
  });
});
