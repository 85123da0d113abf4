import { pollPurgeSource } from '../../edge/purge-sources/poll.ts';
import { purgeSourceConformance } from '../conformance/purge-source.ts';

purgeSourceConformance('poll', (originUrl) => pollPurgeSource({ originUrl, pollMs: 200, pageSize: 2 }), {
  persistentConnection: false,
});
