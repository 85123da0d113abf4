package cache

import (
	"errors"
	"fmt"

	"connectrpc.com/connect"
)

// Error is a failed call, carrying the error code of the cache service's
// interface control document: CACHE_001 … CACHE_006, AUTH_001, AUTH_002.
// Compare with errors.Is against the sentinels below
// (errors.Is(err, cache.ErrInvalidKey)), or read Code.
type Error struct {
	// Code is the ICD code (CACHE_004, AUTH_001, …).
	Code string
	// RPCCode is the gRPC/Connect status the origin answered (or the client
	// produced: Unavailable for a refused connection, DeadlineExceeded for a timeout).
	RPCCode connect.Code
	// Message is the origin's message, or the client's.
	Message string
	// Attempts is how many times the call was sent (1 without retries).
	Attempts int

	circuitOpen bool
	cause       error
}

// Sentinel errors, one per ICD code, for errors.Is.
var (
	// ErrKeyNotFound is CACHE_001 (not raised by Get, which answers nil on a miss).
	ErrKeyNotFound = &Error{Code: "CACHE_001", RPCCode: connect.CodeNotFound, Message: "Key not found"}
	// ErrKeyExpired is CACHE_002 (not raised by Get, which answers nil on a miss).
	ErrKeyExpired = &Error{Code: "CACHE_002", RPCCode: connect.CodeNotFound, Message: "Key expired"}
	// ErrStorageFull is CACHE_003: a value over the origin's MAX_VALUE_BYTES.
	ErrStorageFull = &Error{Code: "CACHE_003", RPCCode: connect.CodeResourceExhausted, Message: "Storage full"}
	// ErrInvalidKey is CACHE_004: a bad namespace, key, TTL, tag or content type, or encrypt without keys at the origin.
	ErrInvalidKey = &Error{Code: "CACHE_004", RPCCode: connect.CodeInvalidArgument, Message: "Invalid key format"}
	// ErrTimeout is CACHE_005: the store is unavailable, the origin unreachable, or the deadline passed.
	ErrTimeout = &Error{Code: "CACHE_005", RPCCode: connect.CodeUnavailable, Message: "Operation timeout"}
	// ErrLeaseLost is CACHE_006: a Set under a refresh lease that no longer holds (it expired, or a
	// newer value was written meanwhile); nothing was written.
	ErrLeaseLost = &Error{Code: "CACHE_006", RPCCode: connect.CodeFailedPrecondition, Message: "Refresh lease lost"}
	// ErrInvalidCredentials is AUTH_001: a missing, expired or badly signed token.
	ErrInvalidCredentials = &Error{Code: "AUTH_001", RPCCode: connect.CodeUnauthenticated, Message: "Invalid credentials"}
	// ErrInsufficientPermissions is AUTH_002: the token lacks the scope or the namespace.
	ErrInsufficientPermissions = &Error{Code: "AUTH_002", RPCCode: connect.CodePermissionDenied, Message: "Insufficient permissions"}
	// ErrCircuitOpen is a CACHE_005 the client raised without calling the
	// origin, because its circuit breaker is open. errors.Is(err, ErrTimeout) is true for it too.
	ErrCircuitOpen = &Error{Code: "CACHE_005", RPCCode: connect.CodeUnavailable, Message: "client circuit breaker is open", circuitOpen: true}
)

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%s): %s", e.Code, e.RPCCode, e.Message)
}

// Unwrap returns the underlying *connect.Error, if any.
func (e *Error) Unwrap() error { return e.cause }

// Is matches a sentinel with the same ICD code; ErrCircuitOpen matches only breaker rejections.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Code == e.Code && (!t.circuitOpen || e.circuitOpen)
}

// codeFor maps a Connect status to an ICD code when the origin sent none
// (a proxy's 503, a refused connection, a client-side deadline).
func codeFor(code connect.Code) string {
	switch code {
	case connect.CodeNotFound:
		return "CACHE_001"
	case connect.CodeResourceExhausted:
		return "CACHE_003"
	case connect.CodeInvalidArgument:
		return "CACHE_004"
	case connect.CodeUnauthenticated:
		return "AUTH_001"
	case connect.CodePermissionDenied:
		return "AUTH_002"
	case connect.CodeFailedPrecondition:
		return "CACHE_006"
	default:
		return "CACHE_005"
	}
}

// fromConnect turns a call's error into an *Error, preferring the ICD code
// the origin sent in `x-cache-error-code`.
func fromConnect(err error, attempts int) *Error {
	var own *Error
	if errors.As(err, &own) {
		c := *own
		c.Attempts = attempts
		return &c
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return &Error{Code: "CACHE_005", RPCCode: connect.CodeUnknown, Message: err.Error(), Attempts: attempts, cause: err}
	}
	code := ce.Meta().Get("x-cache-error-code")
	if code == "" {
		code = codeFor(ce.Code())
	}
	return &Error{Code: code, RPCCode: ce.Code(), Message: ce.Message(), Attempts: attempts, cause: ce}
}
