package jwt

import (
	"errors"
	"fmt"
)

// Reason classifies a verification failure. Reasons label metrics, so the
// set is fixed and small.
type Reason string

// The reasons a token is refused.
const (
	ReasonTooLarge        Reason = "too_large"
	ReasonMalformed       Reason = "malformed"
	ReasonForbiddenHeader Reason = "forbidden_header"
	ReasonUnknownIssuer   Reason = "unknown_issuer"
	ReasonAlgorithm       Reason = "algorithm_not_allowed"
	ReasonUnknownKey      Reason = "unknown_kid"
	ReasonBadSignature    Reason = "bad_signature"
	ReasonMissingExp      Reason = "missing_exp"
	ReasonExpired         Reason = "expired"
	ReasonNotYetValid     Reason = "not_yet_valid"
	ReasonIssuedInFuture  Reason = "issued_in_future"
	ReasonAudience        Reason = "wrong_audience"
	ReasonMissingSubject  Reason = "missing_sub"
	ReasonKeysUnavailable Reason = "keys_unavailable"
	// ReasonRevoked: the token verified but is on the revocation list.
	ReasonRevoked Reason = "revoked"
)

// Error is a refused token. Its message is for logs (it never contains the
// token); Reason is for metrics and callers.
type Error struct {
	Reason   Reason
	Provider string // empty when no provider was selected
	Err      error
}

func (e *Error) Error() string {
	if e.Provider != "" {
		return fmt.Sprintf("jwt (%s): %s: %v", e.Provider, e.Reason, e.Err)
	}
	return fmt.Sprintf("jwt: %s: %v", e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func fail(r Reason, provider string, format string, args ...any) *Error {
	return &Error{Reason: r, Provider: provider, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the reason of a verification error, or "" if err is not one.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
