// Package cache is the Go client of Strata's cache API
// (strata.cache.v1.CacheService), over the Connect protocol on the origin's
// port. It adds, over the generated client in gen/: a bearer token (fixed or
// from a provider, for rotation), a per-attempt timeout (default 5 s), retries
// of idempotent calls with exponential back-off and full jitter (default 3),
// a client-side circuit breaker (threshold 0.5, window 60 s, at least 20
// calls), and errors as *Error values carrying the ICD code.
package cache

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	cachev1 "strata/clients/go/gen/strata/cache/v1"
	"strata/clients/go/gen/strata/cache/v1/cachev1connect"
)

// Options are the per-client defaults of writes.
type Options struct {
	// Encryption encrypts every Set at rest at the origin (AES-256-GCM); the
	// origin answers CACHE_004 when it has no ENCRYPTION_KEYS.
	Encryption bool
}

// Config configures a Client. Only BaseURL and ServiceID are required.
type Config struct {
	// BaseURL is the origin, e.g. http://127.0.0.1:8080 (same port as REST).
	BaseURL string
	// ServiceID is the namespace every call uses, [a-z0-9_-]{1,64}.
	ServiceID string
	// Token is a bearer JWT sent as `authorization: Bearer <token>`.
	Token string
	// TokenProvider, when set, is called before every attempt and wins over Token (rotation).
	TokenProvider func(ctx context.Context) (string, error)
	// Timeout bounds each attempt (default 5 s; negative for none).
	Timeout time.Duration
	// Retries is how many times an idempotent call (Get, GetMany, Delete,
	// Purge, Health) is retried after an UNAVAILABLE answer (default 3; negative for none).
	Retries int
	// BackoffBase is the first back-off (default 100 ms); attempt n waits a
	// uniformly random time in [0, min(BackoffMax, BackoffBase·2ⁿ)] ("full jitter").
	BackoffBase time.Duration
	// BackoffMax caps a back-off (default 2 s).
	BackoffMax time.Duration
	// Breaker configures the client-side circuit breaker (ICD defaults when zero).
	Breaker BreakerConfig
	// Options are write defaults (encryption).
	Options Options
	// HTTPClient is the transport (default http.DefaultClient).
	HTTPClient connect.HTTPClient
	// GRPC switches from the Connect protocol to gRPC (needs an HTTP/2 client).
	GRPC bool
}

// Client calls one origin in one namespace. Safe for concurrent use.
type Client struct {
	// RPC is the generated client, for fields the wrapper does not surface.
	RPC       cachev1connect.CacheServiceClient
	namespace string
	cfg       Config
	breaker   *breaker
}

// Entry is a stored value with its metadata.
type Entry struct {
	Value       []byte
	ContentType string
	// Version is monotonic per key (the REST ETag).
	Version int64
	// ExpiresAtMs is the Unix time in milliseconds at which the entry expires.
	ExpiresAtMs int64
	Tags        []string
	// Source is which tier answered (Get only).
	Source cachev1.CacheSource
	// Stale: a stale answer, past its TTL within stale-while-revalidate, soft-purged, or a local copy
	// Redis may have moved past.
	Stale bool
	// StaleReason is "revalidating" or "soft-purge" past the fresh lifetime, empty otherwise.
	StaleReason string
	// AgeSeconds is the time since the entry was written, seconds.
	AgeSeconds int64
	// StaleWhileRevalidateSeconds and StaleIfErrorSeconds are the writer's grace windows (RFC 5861).
	StaleWhileRevalidateSeconds int64
	StaleIfErrorSeconds         int64
}

// NewClient builds a Client; it does not connect until the first call.
func NewClient(cfg *Config) *Client {
	c := *cfg
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 3
	}
	if c.Retries < 0 {
		c.Retries = 0
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 100 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 2 * time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	opts := []connect.ClientOption{}
	if c.GRPC {
		opts = append(opts, connect.WithGRPC())
	}
	return &Client{
		RPC:       cachev1connect.NewCacheServiceClient(c.HTTPClient, strings.TrimRight(c.BaseURL, "/"), opts...),
		namespace: c.ServiceID,
		cfg:       c,
		breaker:   newBreaker(c.Breaker),
	}
}

// BreakerState is the client-side breaker's state: closed, open or half-open.
func (c *Client) BreakerState() string { return c.breaker.current() }

// serverSide reports whether a failure says the origin (or the path to it) is unwell.
func serverSide(code connect.Code) bool {
	switch code {
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeInternal, connect.CodeUnknown, connect.CodeAborted:
		return true
	}
	return false
}

// call runs one RPC through the breaker, with the token, timeout and, when
// idempotent, retries on UNAVAILABLE.
func call[Req, Res any](ctx context.Context, c *Client, idempotent bool, msg *Req,
	rpc func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error),
) (*connect.Response[Res], error) {
	retries := 0
	if idempotent {
		retries = c.cfg.Retries
	}
	for n := 1; ; n++ {
		if !c.breaker.allow() {
			return nil, fromConnect(ErrCircuitOpen, n-1)
		}
		res, err := attempt(ctx, c, msg, rpc)
		if err == nil {
			c.breaker.record(false, true)
			return res, nil
		}
		var own *Error
		if errors.As(err, &own) { // the token provider failed: nothing was sent
			c.breaker.record(false, false)
			return nil, fromConnect(err, n)
		}
		code := connect.CodeOf(err)
		c.breaker.record(serverSide(code), serverSide(code))
		if code != connect.CodeUnavailable || n > retries || ctx.Err() != nil {
			return nil, fromConnect(err, n)
		}
		ceiling := min(c.cfg.BackoffMax, c.cfg.BackoffBase<<(n-1))
		wait := time.Duration(rand.Int64N(int64(ceiling) + 1))
		select {
		case <-ctx.Done():
			return nil, fromConnect(connect.NewError(connect.CodeDeadlineExceeded, ctx.Err()), n)
		case <-time.After(wait):
		}
	}
}

// attempt sends one request with the token and the per-attempt timeout.
func attempt[Req, Res any](ctx context.Context, c *Client, msg *Req,
	rpc func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error),
) (*connect.Response[Res], error) {
	timeout := c.cfg.Timeout
	// A read that waits for another caller's refresh needs a deadline beyond its wait.
	if g, ok := any(msg).(*cachev1.GetRequest); ok && g.WaitSeconds > 0 && timeout > 0 {
		timeout = max(timeout, time.Duration(g.WaitSeconds+5)*time.Second)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req := connect.NewRequest(msg)
	token := c.cfg.Token
	if c.cfg.TokenProvider != nil {
		t, err := c.cfg.TokenProvider(ctx)
		if err != nil {
			return nil, &Error{Code: "AUTH_001", RPCCode: connect.CodeUnauthenticated, Message: "token provider: " + err.Error(), cause: err}
		}
		token = t
	}
	if token != "" {
		req.Header().Set("Authorization", "Bearer "+token)
	}
	return rpc(ctx, req)
}

// SetOption tunes one Set or SetMany.
type SetOption func(*setOptions)

type setOptions struct {
	ttl         time.Duration
	contentType string
	tags        []string
	encrypt     *bool
	compress    *bool
	swr, sie    int64
	lease       string
}

// TTL sets the entry's time to live in seconds (1 … 31536000); the origin's default when absent.
func TTL(seconds int64) SetOption {
	return func(o *setOptions) { o.ttl = time.Duration(seconds) * time.Second }
}

// ContentType records the value's content type (default application/octet-stream).
func ContentType(t string) SetOption { return func(o *setOptions) { o.contentType = t } }

// Tags records surrogate keys for purge by tag (Set only).
func Tags(tags ...string) SetOption { return func(o *setOptions) { o.tags = tags } }

// Encrypt overrides Options.Encryption for one Set.
func Encrypt(on bool) SetOption { return func(o *setOptions) { o.encrypt = &on } }

// Compress stores the value zstd-compressed when that saves space (true) or never (false), for Set and
// SetMany. Without it the origin compresses values above its COMPRESS_MIN_BYTES (default 1024 bytes).
// Ignored for an encrypted write, which is stored uncompressed; reads always return the original bytes.
func Compress(on bool) SetOption { return func(o *setOptions) { o.compress = &on } }

// Grace keeps the entry past its TTL, seconds (RFC 5861): within staleWhileRevalidate reads answer it
// stale while one caller refreshes it; within staleIfError an edge whose origin fails may serve it.
func Grace(staleWhileRevalidate, staleIfError int64) SetOption {
	return func(o *setOptions) { o.swr, o.sie = staleWhileRevalidate, staleIfError }
}

// Lease completes the refresh this caller was handed (ReadResult.Lease); a lease that no longer holds
// fails with ErrLeaseLost (CACHE_006) and nothing is written. Set only.
func Lease(token string) SetOption { return func(o *setOptions) { o.lease = token } }

// ReadOption tunes one Get or Read.
type ReadOption func(*cachev1.GetRequest)

// Strong reads only what the store confirms now (REST Cache-Control: no-cache): never the origin's
// fallback tier (ErrTimeout while the store is down), never a stale entry (a miss instead).
func Strong() ReadOption { return func(r *cachev1.GetRequest) { r.Strong = true } }

// WithLease asks to be handed the key's refresh lease when the entry is missing, stale or due for
// early refresh (REST Prefer: lease); one caller per key at a time gets it.
func WithLease() ReadOption { return func(r *cachev1.GetRequest) { r.Lease = true } }

// Wait makes a miss another caller is refreshing wait up to seconds (at most 10) for its write (REST
// Prefer: wait); implies WithLease.
func Wait(seconds int32) ReadOption {
	return func(r *cachev1.GetRequest) { r.WaitSeconds, r.Lease = seconds, true }
}

func setOpts(opts []SetOption) setOptions {
	var o setOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Get reads one entry; nil and no error on a miss. Idempotent: retried.
func (c *Client) Get(ctx context.Context, key string, opts ...ReadOption) (*Entry, error) {
	r, err := c.Read(ctx, key, opts...)
	if err != nil {
		return nil, err
	}
	return r.Entry, nil
}

// ReadResult is a read's entry (nil on a miss) and the key's refresh lease when this caller was handed it.
type ReadResult struct {
	Entry *Entry
	// Lease is the token to pass to Set with Lease; empty when this caller was not chosen.
	Lease string
}

// Read reads one entry and, with WithLease or Wait, may hand this caller the key's refresh lease. Retried.
func (c *Client) Read(ctx context.Context, key string, opts ...ReadOption) (*ReadResult, error) {
	req := &cachev1.GetRequest{Namespace: c.namespace, Key: key}
	for _, f := range opts {
		f(req)
	}
	res, err := call(ctx, c, true, req, c.RPC.Get)
	if err != nil {
		return nil, err
	}
	m := res.Msg
	if !m.Found {
		return &ReadResult{Lease: m.Lease}, nil
	}
	return &ReadResult{Lease: m.Lease, Entry: &Entry{Value: m.Value, ContentType: m.ContentType, Version: m.Version,
		ExpiresAtMs: m.ExpiresAtMs, Tags: m.Tags, Source: m.Source, Stale: m.Stale, StaleReason: m.StaleReason,
		AgeSeconds: m.AgeSeconds, StaleWhileRevalidateSeconds: m.StaleWhileRevalidateSeconds,
		StaleIfErrorSeconds: m.StaleIfErrorSeconds}}, nil
}

// GetOrSet answers the cached value of key, or loader's, loaded by one caller across all clients
// (memcache leases, NSDI 2013): only the caller handed the key's refresh lease runs loader and writes
// its value with opts under the lease; the others wait (5 s per read) for that write. A stale hit
// answers the stale value; a lease handed with it is refreshed first. A write whose lease was lost
// (ErrLeaseLost) still answers the loaded value. When ctx ends, its error is returned. loaded is true
// when this caller's loader produced the value.
func (c *Client) GetOrSet(ctx context.Context, key string, loader func(context.Context) ([]byte, error),
	opts ...SetOption,
) (value []byte, loaded bool, err error) {
	refresh := func(lease string) ([]byte, error) {
		v, err := loader(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := c.Set(ctx, key, v, append(opts, Lease(lease))...); err != nil && !errors.Is(err, ErrLeaseLost) {
			return nil, err
		}
		return v, nil
	}
	for ctx.Err() == nil {
		r, err := c.Read(ctx, key, Wait(5))
		if err != nil {
			return nil, false, err
		}
		if r.Entry != nil {
			if r.Lease != "" {
				if _, err := refresh(r.Lease); err != nil {
					return nil, false, err
				}
			}
			return r.Entry.Value, false, nil
		}
		if r.Lease != "" {
			v, err := refresh(r.Lease)
			return v, err == nil, err
		}
	}
	return nil, false, fromConnect(connect.NewError(connect.CodeDeadlineExceeded, ctx.Err()), 1)
}

// SetResult is what a write returns.
type SetResult struct {
	Version     int64
	ExpiresAtMs int64
}

// Set writes one value; every edge drops older copies. Not retried (not idempotent).
func (c *Client) Set(ctx context.Context, key string, value []byte, opts ...SetOption) (*SetResult, error) {
	o := setOpts(opts)
	encrypt := c.cfg.Options.Encryption
	if o.encrypt != nil {
		encrypt = *o.encrypt
	}
	req := &cachev1.SetRequest{Namespace: c.namespace, Key: key, Value: value, TtlSeconds: int64(o.ttl / time.Second),
		ContentType: o.contentType, Tags: o.tags, Encrypt: encrypt, Compress: o.compress,
		StaleWhileRevalidateSeconds: o.swr, StaleIfErrorSeconds: o.sie, Lease: o.lease}
	res, err := call(ctx, c, false, req, c.RPC.Set)
	if err != nil {
		return nil, err
	}
	return &SetResult{Version: res.Msg.Version, ExpiresAtMs: res.Msg.ExpiresAtMs}, nil
}

// Delete removes one key and purges it at every edge; false when it was absent. Retried.
func (c *Client) Delete(ctx context.Context, key string) (bool, error) {
	res, err := call(ctx, c, true, &cachev1.DeleteRequest{Namespace: c.namespace, Key: key}, c.RPC.Delete)
	if err != nil {
		return false, err
	}
	return res.Msg.Deleted, nil
}

// GetManyResult holds the found entries by key and the keys that missed.
type GetManyResult struct {
	Values  map[string]*Entry
	Missing []string
	Source  cachev1.CacheSource
}

// GetMany reads up to 1000 keys. Retried.
func (c *Client) GetMany(ctx context.Context, keys []string) (*GetManyResult, error) {
	res, err := call(ctx, c, true, &cachev1.BatchGetRequest{Namespace: c.namespace, Keys: keys}, c.RPC.BatchGet)
	if err != nil {
		return nil, err
	}
	out := &GetManyResult{Values: map[string]*Entry{}, Missing: res.Msg.MissingKeys, Source: res.Msg.Source}
	for k, v := range res.Msg.Values {
		e := &Entry{Value: v, Source: res.Msg.Source}
		if m := res.Msg.Entries[k]; m != nil {
			e.ContentType, e.Version, e.ExpiresAtMs, e.Tags = m.ContentType, m.Version, m.ExpiresAtMs, m.Tags
			e.Stale, e.StaleReason, e.AgeSeconds = m.Stale, m.StaleReason, m.AgeSeconds
			e.StaleWhileRevalidateSeconds, e.StaleIfErrorSeconds = m.StaleWhileRevalidateSeconds, m.StaleIfErrorSeconds
		}
		out.Values[k] = e
	}
	return out, nil
}

// SetMany writes up to 1000 values with one TTL and content type; returns how many were stored. Not retried.
func (c *Client) SetMany(ctx context.Context, entries map[string][]byte, opts ...SetOption) (int, error) {
	o := setOpts(opts)
	req := &cachev1.BatchSetRequest{Namespace: c.namespace, Entries: entries, TtlSeconds: int64(o.ttl / time.Second),
		ContentType: o.contentType, Compress: o.compress, StaleWhileRevalidateSeconds: o.swr, StaleIfErrorSeconds: o.sie}
	res, err := call(ctx, c, false, req, c.RPC.BatchSet)
	if err != nil {
		return 0, err
	}
	return int(res.Msg.StoredCount), nil
}

// PurgeSelector chooses what Purge removes: keys, tags and/or a key prefix.
type PurgeSelector struct {
	Keys   []string
	Tags   []string
	Prefix *string
	// Soft marks the entries stale (served within their grace, reason soft-purge, while one refresh
	// lease runs) instead of removing them; entries without grace are removed.
	Soft bool
}

// Purge removes entries by keys, tags or prefix at the origin and every edge;
// returns how many the origin removed. Retried (purging twice is harmless).
func (c *Client) Purge(ctx context.Context, sel PurgeSelector) (int, error) {
	req := &cachev1.PurgeRequest{Namespace: c.namespace, Keys: sel.Keys, Tags: sel.Tags, Prefix: sel.Prefix, Soft: sel.Soft}
	res, err := call(ctx, c, true, req, c.RPC.Purge)
	if err != nil {
		return 0, err
	}
	return int(res.Msg.PurgedCount), nil
}

// Health reports store reachability and the origin's breaker state. Retried.
func (c *Client) Health(ctx context.Context) (*cachev1.HealthResponse, error) {
	res, err := call(ctx, c, true, &cachev1.HealthRequest{}, c.RPC.Health)
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}
