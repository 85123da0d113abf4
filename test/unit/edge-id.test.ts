import { describe, expect, it } from 'vitest';
import { edgeIdOf, maxEdgeIdLength } from '../../edge/edge-id.ts';

describe('edgeIdOf', () => {
  it('is EDGE_ID when set, else host:port', () => {
    expect(edgeIdOf('edge-a', 'box', 8080)).toBe('edge-a');
    expect(edgeIdOf(undefined, 'box', 8080)).toBe('box:8080');
  });

  it('cuts a long host name so the id fits what the origin takes, keeping the port', () => {
    const id = edgeIdOf(undefined, 'h'.repeat(200), 65_535);
    expect(id).toHaveLength(maxEdgeIdLength);
    expect(id.endsWith(':65535')).toBe(true);
  });
});
