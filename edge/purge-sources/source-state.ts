import type { PurgePosition } from '../../shared/schemas.ts';
import type { PurgeConfirmation, PurgeHandlers, PurgeSubscription } from '../core/purge-source.ts';

/**
 * The state every purge source keeps for one subscription: the position
 * applied last, the last confirmation, whether it is in contact, whether it
 * was closed. `setConnected` reports changes to `onStateChange`, never after
 * `closed`.
 */
export interface SourceState {
  position: PurgePosition | null;
  confirmation: PurgeConfirmation | null;
  connected: boolean;
  closed: boolean;
  setConnected(value: boolean): void;
}

/** A subscription's state, starting at `from` (null: at the head on first contact). */
export function sourceState(handlers: PurgeHandlers, from: PurgePosition | null | undefined): SourceState {
  const state: SourceState = {
    position: from ?? null,
    confirmation: null,
    connected: false,
    closed: false,
    setConnected(value) {
      if (state.connected === value || state.closed) return;
      state.connected = value;
      handlers.onStateChange?.(value);
    },
  };
  return state;
}

/** The read-only view of `state` a source hands out, with the source's own methods (`close` and any more). */
export function subscriptionOf<M extends { close(): void }>(
  state: SourceState,
  methods: M,
): PurgeSubscription & NoInfer<M> {
  const view = {
    get connected() {
      return state.connected;
    },
    get position() {
      return state.position;
    },
    get confirmation() {
      return state.confirmation;
    },
  };
  return Object.assign(view, methods);
}
