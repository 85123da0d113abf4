package cache

import (
	"testing"
	"time"
)

// A clock the test moves by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func breakerAt(c *clock) *breaker {
	b := newBreaker(BreakerConfig{}) // the ICD defaults: 0.5, 60 s, 20 calls
	b.now = c.now
	return b
}

func TestBreakerDefaults(t *testing.T) {
	c := &clock{t: time.Unix(1_000, 0)}

	b := breakerAt(c)
	for i := 0; i < 19; i++ {
		b.record(true, true)
	}
	if b.current() != BreakerClosed {
		t.Fatal("opened below the minimum of 20 calls")
	}
	b.record(true, true)
	if b.current() != BreakerOpen || b.allow() {
		t.Fatal("20 failures out of 20 must open and refuse calls")
	}

	b = breakerAt(c)
	for i := 0; i < 10; i++ {
		b.record(false, true)
		b.record(true, true)
	}
	if b.current() != BreakerOpen {
		t.Fatal("a failure ratio of exactly 0.5 over 20 calls must open")
	}

	b = breakerAt(c)
	for i := 0; i < 11; i++ {
		b.record(false, true)
	}
	for i := 0; i < 9; i++ {
		b.record(true, true)
	}
	if b.current() != BreakerClosed {
		t.Fatal("9 failures in 20 calls (0.45) must not open")
	}

	b = breakerAt(c)
	for i := 0; i < 19; i++ {
		b.record(true, true)
	}
	c.t = c.t.Add(61 * time.Second)
	b.record(true, true)
	if b.current() != BreakerClosed {
		t.Fatal("calls older than the 60 s window still counted")
	}
	for i := 0; i < 5; i++ {
		b.record(true, false) // client errors are not counted
	}
	if b.current() != BreakerClosed {
		t.Fatal("client errors counted")
	}
}

func TestBreakerHalfOpen(t *testing.T) {
	c := &clock{t: time.Unix(1_000, 0)}
	b := breakerAt(c)
	for i := 0; i < 20; i++ {
		b.record(true, true)
	}
	c.t = c.t.Add(29 * time.Second)
	if b.allow() {
		t.Fatal("let a call through before the 30 s cool-down")
	}
	c.t = c.t.Add(time.Second)
	if b.current() != BreakerHalfOpen || !b.allow() {
		t.Fatal("no trial call after the cool-down")
	}
	if b.allow() {
		t.Fatal("a second call during the half-open trial")
	}
	b.record(true, true)
	if b.current() != BreakerOpen {
		t.Fatal("a failed trial must reopen")
	}
	c.t = c.t.Add(30 * time.Second)
	b.allow()
	b.record(false, true)
	if b.current() != BreakerClosed || !b.allow() {
		t.Fatal("a good trial must close")
	}
}
