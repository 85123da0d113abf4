import { ssePurgeSource } from '../../edge/purge-sources/sse.ts';
import { purgeSourceConformance } from '../conformance/purge-source.ts';

purgeSourceConformance(
  'SSE stream',
  (originUrl, { idleTimeoutMs }) => ssePurgeSource({ originUrl, idleTimeoutMs, retry: { minMs: 50, maxMs: 500 } }),
  { persistentConnection: true },
);
