package cache

import (
	"sync"
	"time"
)

// BreakerConfig is the client-side circuit breaker: it opens when, over the
// last Window, at least MinRequests calls were made and the share that failed
// with a server-side error (unavailable, deadline, internal) reached
// Threshold. While open, calls fail at once with ErrCircuitOpen; after
// HalfOpenAfter one trial call goes through (half-open) and closes the
// breaker on success or opens it again on failure. Client errors
// (CACHE_003, CACHE_004, AUTH_*) are not counted; in half-open they close
// the breaker, since the origin answered.
type BreakerConfig struct {
	// Threshold is the failure ratio that opens the breaker, 0 … 1 (default 0.5).
	Threshold float64
	// Window is the sliding window over which calls are counted (default 60 s).
	Window time.Duration
	// MinRequests is the number of calls in the window below which it never opens (default 20).
	MinRequests int
	// HalfOpenAfter is how long the breaker stays open before a trial call (default 30 s).
	HalfOpenAfter time.Duration
	// Disabled turns the breaker off.
	Disabled bool
}

// Breaker states, as reported by Client.BreakerState.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
)

type outcome struct {
	at     time.Time
	failed bool
}

type breaker struct {
	cfg      BreakerConfig
	mu       sync.Mutex
	state    string
	openedAt time.Time
	trial    bool
	calls    []outcome
	now      func() time.Time
}

func newBreaker(cfg BreakerConfig) *breaker {
	if cfg.Threshold <= 0 {
		cfg.Threshold = 0.5
	}
	if cfg.Window <= 0 {
		cfg.Window = 60 * time.Second
	}
	if cfg.MinRequests <= 0 {
		cfg.MinRequests = 20
	}
	if cfg.HalfOpenAfter <= 0 {
		cfg.HalfOpenAfter = 30 * time.Second
	}
	return &breaker{cfg: cfg, state: BreakerClosed, now: time.Now}
}

// allow reports whether a call may go out now; false while open.
func (b *breaker) allow() bool {
	if b.cfg.Disabled {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerOpen:
		if b.now().Sub(b.openedAt) < b.cfg.HalfOpenAfter {
			return false
		}
		b.state = BreakerHalfOpen
		b.trial = true
		return true
	case BreakerHalfOpen:
		if b.trial {
			return false
		}
		b.trial = true
		return true
	default:
		return true
	}
}

// record notes an outcome: failed (server-side), or not; counted says whether
// it enters the window (client errors do not, but still end a half-open trial).
func (b *breaker) record(failed, counted bool) {
	if b.cfg.Disabled {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.state == BreakerHalfOpen {
		b.trial = false
		if failed {
			b.state, b.openedAt = BreakerOpen, now
		} else {
			b.state, b.calls = BreakerClosed, nil
		}
		return
	}
	if !counted {
		return
	}
	cut := 0
	for cut < len(b.calls) && now.Sub(b.calls[cut].at) > b.cfg.Window {
		cut++
	}
	b.calls = append(b.calls[cut:], outcome{at: now, failed: failed})
	if len(b.calls) < b.cfg.MinRequests {
		return
	}
	failures := 0
	for _, c := range b.calls {
		if c.failed {
			failures++
		}
	}
	if float64(failures)/float64(len(b.calls)) >= b.cfg.Threshold {
		b.state, b.openedAt, b.calls = BreakerOpen, now, nil
	}
}

func (b *breaker) current() string {
	if b.cfg.Disabled {
		return BreakerClosed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && b.now().Sub(b.openedAt) >= b.cfg.HalfOpenAfter {
		return BreakerHalfOpen
	}
	return b.state
}
