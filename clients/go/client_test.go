package cache_test

// Runs against a real origin that the repository's test harness starts
// (test/integration/clients-python-go.test.ts) and describes in the
// environment. A missing variable fails the suite: it never skips.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	cache "strata/clients/go"
	cachev1 "strata/clients/go/gen/strata/cache/v1"
)

var env = map[string]string{}

func TestMain(m *testing.M) {
	missing := []string{}
	for _, name := range []string{"STRATA_ORIGIN_URL", "STRATA_NAMESPACE", "STRATA_TOKEN", "STRATA_OTHER_NAMESPACE",
		"STRATA_FORGED_TOKEN", "STRATA_FLAKY_URL", "STRATA_DOWN_URL", "STRATA_CLOSED_URL", "STRATA_MAX_VALUE_BYTES"} {
		v := os.Getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		env[name] = v
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "missing %s: run this suite through `npx vitest run test/integration/clients-python-go.test.ts`\n", strings.Join(missing, ", "))
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// payload is the value each language writes in the cross-language check: not valid UTF-8.
func payload(lang string) []byte {
	b := append([]byte(lang), 0x00, 0xff, 0xfe, 0xc3, 0x28)
	for i := 0; i < 256; i++ {
		b = append(b, byte(i))
	}
	return b
}

func client(mod func(*cache.Config)) *cache.Client {
	cfg := &cache.Config{BaseURL: env["STRATA_ORIGIN_URL"], ServiceID: env["STRATA_NAMESPACE"], Token: env["STRATA_TOKEN"],
		BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
	if mod != nil {
		mod(cfg)
	}
	return cache.NewClient(cfg)
}

func key(name string) string { return fmt.Sprintf("go:%s:%d", name, time.Now().UnixNano()) }

func expectCode(t *testing.T, err error, sentinel *cache.Error) *cache.Error {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("want %s, got %v", sentinel.Code, err)
	}
	var e *cache.Error
	errors.As(err, &e)
	return e
}

func TestEveryCall(t *testing.T) {
	ctx := context.Background()
	c := client(nil)
	k := key("one")
	if e, err := c.Get(ctx, k); err != nil || e != nil {
		t.Fatalf("miss: %v %v", e, err)
	}
	res, err := c.Set(ctx, k, []byte("hello"), cache.TTL(3600), cache.ContentType("text/plain"), cache.Tags("go-tag"))
	if err != nil || res.Version <= 0 || res.ExpiresAtMs <= time.Now().UnixMilli() {
		t.Fatalf("set: %+v %v", res, err)
	}
	e, err := c.Get(ctx, k)
	if err != nil || e == nil || string(e.Value) != "hello" || e.ContentType != "text/plain" || e.Version != res.Version ||
		len(e.Tags) != 1 || e.Source == cachev1.CacheSource_CACHE_SOURCE_UNSPECIFIED {
		t.Fatalf("get: %+v %v", e, err)
	}
	deleted, err := c.Delete(ctx, k)
	if err != nil || !deleted {
		t.Fatalf("delete: %v %v", deleted, err)
	}
	if deleted, err = c.Delete(ctx, k); err != nil || deleted {
		t.Fatalf("second delete: %v %v", deleted, err)
	}
	a, b, absent := key("a"), key("b"), key("absent")
	n, err := c.SetMany(ctx, map[string][]byte{a: []byte("A"), b: []byte("B")}, cache.TTL(600))
	if err != nil || n != 2 {
		t.Fatalf("set many: %d %v", n, err)
	}
	many, err := c.GetMany(ctx, []string{a, b, absent})
	if err != nil || len(many.Values) != 2 || string(many.Values[a].Value) != "A" || string(many.Values[b].Value) != "B" ||
		many.Values[a].Version <= 0 || len(many.Missing) != 1 || many.Missing[0] != absent {
		t.Fatalf("get many: %+v %v", many, err)
	}
	tagged := key("tagged")
	if _, err := c.Set(ctx, tagged, []byte("t"), cache.Tags("go-purge")); err != nil {
		t.Fatal(err)
	}
	purged, err := c.Purge(ctx, cache.PurgeSelector{Tags: []string{"go-purge"}})
	if err != nil || purged < 1 {
		t.Fatalf("purge: %d %v", purged, err)
	}
	if e, err := c.Get(ctx, tagged); err != nil || e != nil {
		t.Fatalf("after purge: %+v %v", e, err)
	}
	h, err := c.Health(ctx)
	if err != nil || !h.Healthy {
		t.Fatalf("health: %+v %v", h, err)
	}
}

func TestEncryptAndTokenProvider(t *testing.T) {
	ctx := context.Background()
	calls := 0
	c := client(func(cfg *cache.Config) {
		cfg.Token = ""
		cfg.TokenProvider = func(context.Context) (string, error) { calls++; return env["STRATA_TOKEN"], nil }
		cfg.Options.Encryption = true
	})
	k := key("secret")
	if _, err := c.Set(ctx, k, payload("enc")); err != nil {
		t.Fatal(err)
	}
	e, err := c.Get(ctx, k)
	if err != nil || e == nil || !bytes.Equal(e.Value, payload("enc")) {
		t.Fatalf("encrypted round trip: %+v %v", e, err)
	}
	if calls != 2 {
		t.Fatalf("token provider called %d times, want 2", calls)
	}
}

func TestAuthErrors(t *testing.T) {
	ctx := context.Background()
	_, err := client(func(cfg *cache.Config) { cfg.Token = "" }).Get(ctx, key("x"))
	e := expectCode(t, err, cache.ErrInvalidCredentials)
	if e.Attempts != 1 {
		t.Fatalf("AUTH_001 retried: %d attempts", e.Attempts)
	}
	_, err = client(func(cfg *cache.Config) { cfg.Token = env["STRATA_FORGED_TOKEN"] }).Get(ctx, key("x"))
	expectCode(t, err, cache.ErrInvalidCredentials)
	_, err = client(func(cfg *cache.Config) { cfg.ServiceID = env["STRATA_OTHER_NAMESPACE"] }).Get(ctx, key("x"))
	expectCode(t, err, cache.ErrInsufficientPermissions)
}

func TestErrorCodes(t *testing.T) {
	ctx := context.Background()
	c := client(nil)
	_, err := c.Get(ctx, "bad\x00key")
	expectCode(t, err, cache.ErrInvalidKey)
	var limit int
	fmt.Sscan(env["STRATA_MAX_VALUE_BYTES"], &limit)
	_, err = c.Set(ctx, key("big"), make([]byte, limit+1))
	expectCode(t, err, cache.ErrStorageFull)
	down := client(func(cfg *cache.Config) { cfg.BaseURL = env["STRATA_DOWN_URL"] })
	_, err = down.Get(ctx, key("down"))
	e := expectCode(t, err, cache.ErrTimeout)
	if e.Attempts != 4 {
		t.Fatalf("an UNAVAILABLE Get is tried 1 + 3 times, got %d", e.Attempts)
	}
}

// arm makes the flaky proxy answer 503 to its next n requests.
func arm(t *testing.T, n int) {
	t.Helper()
	control(t, fmt.Sprintf("/__fail?count=%d", n))
}

// control posts to the flaky proxy's control path (`/__fail?count=N`, `/__delay?ms=N`).
func control(t *testing.T, path string) {
	t.Helper()
	res, err := http.Post(env["STRATA_FLAKY_URL"]+path, "text/plain", nil)
	if err != nil || res.StatusCode != 204 {
		t.Fatalf("proxy control %s: %v %v", path, res, err)
	}
	res.Body.Close()
}

func TestTimeoutAndRefusedConnection(t *testing.T) {
	ctx := context.Background()
	control(t, "/__delay?ms=2000")
	slow := client(func(cfg *cache.Config) { cfg.BaseURL = env["STRATA_FLAKY_URL"]; cfg.Timeout = 200 * time.Millisecond })
	_, err := slow.Get(ctx, key("slow"))
	e := expectCode(t, err, cache.ErrTimeout)
	if e.RPCCode != connect.CodeDeadlineExceeded || e.Attempts != 1 {
		t.Fatalf("a timed-out attempt: %s after %d attempts", e.RPCCode, e.Attempts)
	}
	_, err = client(func(cfg *cache.Config) { cfg.BaseURL = env["STRATA_CLOSED_URL"] }).Get(ctx, key("refused"))
	e = expectCode(t, err, cache.ErrTimeout)
	if e.RPCCode != connect.CodeUnavailable || e.Attempts != 4 {
		t.Fatalf("a refused connection: %s after %d attempts", e.RPCCode, e.Attempts)
	}
}

func TestRetryAfter503(t *testing.T) {
	ctx := context.Background()
	c := client(func(cfg *cache.Config) { cfg.BaseURL = env["STRATA_FLAKY_URL"] })
	k := key("retry")
	if _, err := client(nil).Set(ctx, k, []byte("after-503")); err != nil {
		t.Fatal(err)
	}
	arm(t, 1)
	e, err := c.Get(ctx, k)
	if err != nil || e == nil || string(e.Value) != "after-503" {
		t.Fatalf("get through one 503: %+v %v", e, err)
	}
	arm(t, 1)
	_, err = c.Set(ctx, k, []byte("x"))
	if got := expectCode(t, err, cache.ErrTimeout); got.Attempts != 1 {
		t.Fatalf("Set retried: %d", got.Attempts)
	}
	arm(t, 0)
}

func TestBreakerOpensAndHalfOpens(t *testing.T) {
	ctx := context.Background()
	c := client(func(cfg *cache.Config) {
		cfg.BaseURL = env["STRATA_FLAKY_URL"]
		cfg.Retries = -1
		cfg.Breaker = cache.BreakerConfig{Threshold: 0.5, Window: time.Minute, MinRequests: 4, HalfOpenAfter: 300 * time.Millisecond}
	})
	k := key("breaker")
	arm(t, 1000)
	defer arm(t, 0)
	for i := 0; i < 4; i++ {
		_, err := c.Get(ctx, k)
		if errors.Is(err, cache.ErrCircuitOpen) {
			t.Fatalf("opened after %d calls, before the minimum of 4", i)
		}
		expectCode(t, err, cache.ErrTimeout)
	}
	if c.BreakerState() != cache.BreakerOpen {
		t.Fatalf("state %s after 4 failures", c.BreakerState())
	}
	_, err := c.Get(ctx, k)
	expectCode(t, err, cache.ErrCircuitOpen)
	arm(t, 0)
	deadline := time.Now().Add(10 * time.Second)
	for c.BreakerState() != cache.BreakerHalfOpen {
		if time.Now().After(deadline) {
			t.Fatal("breaker never half-opened")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := c.Get(ctx, k); err != nil {
		t.Fatalf("trial call: %v", err)
	}
	if c.BreakerState() != cache.BreakerClosed {
		t.Fatalf("state %s after a good trial call", c.BreakerState())
	}
}

// TestCrossLanguage writes this language's value (STRATA_XLANG_WRITE=go) and
// reads the others' (STRATA_XLANG_READ=ts,py) byte for byte.
func TestCrossLanguage(t *testing.T) {
	ctx := context.Background()
	c := client(nil)
	if os.Getenv("STRATA_XLANG_WRITE") == "" && os.Getenv("STRATA_XLANG_READ") == "" {
		t.Fatal("set STRATA_XLANG_WRITE and/or STRATA_XLANG_READ")
	}
	if lang := os.Getenv("STRATA_XLANG_WRITE"); lang != "" {
		if _, err := c.Set(ctx, "xlang:"+lang, payload(lang), cache.ContentType("application/octet-stream")); err != nil {
			t.Fatal(err)
		}
	}
	for _, lang := range strings.Split(os.Getenv("STRATA_XLANG_READ"), ",") {
		if lang == "" {
			continue
		}
		e, err := c.Get(ctx, "xlang:"+lang)
		if err != nil || e == nil || !bytes.Equal(e.Value, payload(lang)) {
			t.Fatalf("value written by %s: %+v %v", lang, e, err)
		}
	}
}

// TestCompressOption writes a compressible value with Compress(true) and
// Compress(false) (Set and SetMany) under fixed keys; each reads back as
// written here, and the harness checks in the store that the value was kept
// compressed or not as asked.
func TestCompressOption(t *testing.T) {
	ctx := context.Background()
	c := client(nil)
	value := bytes.Repeat([]byte("strata compresses this "), 150)
	if _, err := c.Set(ctx, "compress:go:on", value, cache.Compress(true)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(ctx, "compress:go:off", value, cache.Compress(false)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.SetMany(ctx, map[string][]byte{"compress:go:many": value}, cache.Compress(true)); err != nil || n != 1 {
		t.Fatalf("SetMany: %d %v", n, err)
	}
	for _, k := range []string{"compress:go:on", "compress:go:off", "compress:go:many"} {
		e, err := c.Get(ctx, k)
		if err != nil || e == nil || !bytes.Equal(e.Value, value) {
			t.Fatalf("%s: %+v %v", k, e, err)
		}
	}
}

func TestEntryLifecycle(t *testing.T) {
	ctx := context.Background()
	c := client(nil)
	k := key("lifecycle")
	if _, err := c.Set(ctx, k, []byte("v1"), cache.TTL(300), cache.Grace(300, 600)); err != nil {
		t.Fatal(err)
	}
	e, err := c.Get(ctx, k)
	if err != nil || e == nil || e.Stale || e.StaleWhileRevalidateSeconds != 300 || e.StaleIfErrorSeconds != 600 {
		t.Fatalf("fresh entry with grace: %+v %v", e, err)
	}
	if n, err := c.Purge(ctx, cache.PurgeSelector{Keys: []string{k}, Soft: true}); err != nil || n != 1 {
		t.Fatalf("soft purge: %d %v", n, err)
	}
	e, err = c.Get(ctx, k)
	if err != nil || e == nil || string(e.Value) != "v1" || !e.Stale || e.StaleReason != "soft-purge" {
		t.Fatalf("soft-purged entry: %+v %v", e, err)
	}
	many, err := c.GetMany(ctx, []string{k})
	if err != nil {
		t.Fatal(err)
	}
	if b := many.Values[k]; b == nil || !b.Stale || b.StaleReason != "soft-purge" ||
		b.StaleWhileRevalidateSeconds != 300 || b.StaleIfErrorSeconds != 600 {
		t.Fatalf("a batch read answers the same lifecycle: %+v", b)
	}
	if e, err := c.Get(ctx, k, cache.Strong()); err != nil || e != nil {
		t.Fatalf("a strong read of a stale entry is a miss: %+v %v", e, err)
	}
	first, err := c.Read(ctx, k, cache.WithLease())
	if err != nil || first.Lease == "" {
		t.Fatalf("the first reader gets the lease: %+v %v", first, err)
	}
	if second, err := c.Read(ctx, k, cache.WithLease()); err != nil || second.Lease != "" {
		t.Fatalf("a second reader gets none: %+v %v", second, err)
	}
	if _, err := c.Set(ctx, k, []byte("v2"), cache.TTL(300), cache.Lease(first.Lease)); err != nil {
		t.Fatal(err)
	}
	_, err = c.Set(ctx, k, []byte("late"), cache.Lease(first.Lease))
	if e := expectCode(t, err, cache.ErrLeaseLost); e.RPCCode != connect.CodeFailedPrecondition {
		t.Fatalf("a spent lease is FAILED_PRECONDITION, got %s", e.RPCCode)
	}
	if e, err := c.Get(ctx, k); err != nil || e == nil || string(e.Value) != "v2" || e.Stale {
		t.Fatalf("the refresh stands: %+v %v", e, err)
	}
}

func TestGetOrSetLoadsOnce(t *testing.T) {
	k := key("getorset")
	var loads atomic.Int32
	loader := func(context.Context) ([]byte, error) {
		loads.Add(1)
		time.Sleep(200 * time.Millisecond)
		return []byte("computed"), nil
	}
	var wg sync.WaitGroup
	values := make([][]byte, 10)
	loaded := make([]bool, 10)
	errs := make([]error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			values[i], loaded[i], errs[i] = client(nil).GetOrSet(context.Background(), k, loader, cache.TTL(60))
		}()
	}
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Fatalf("the loader ran %d times", n)
	}
	loaders := 0
	for i := range 10 {
		if errs[i] != nil || string(values[i]) != "computed" {
			t.Fatalf("caller %d: %q %v", i, values[i], errs[i])
		}
		if loaded[i] {
			loaders++
		}
	}
	if loaders != 1 {
		t.Fatalf("%d callers report loading", loaders)
	}
}
