package decisionlog

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends e as one JSON object. It produces what encoding/json
// would for Entry (same keys, same omitempty rules) without reflection:
// the log is written for every request, and reflection-based encoding was a
// measurable share of the authorizer's CPU under load.
func (e *Entry) AppendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, "decision_id", e.DecisionID, false)
	b = appendField(b, "request_id", e.RequestID, true)
	b = appendField(b, "route", e.Route, true)
	b = appendField(b, "service", e.Service, true)
	b = appendField(b, "policy_set", e.PolicySet, true)
	b = appendField(b, "mode", e.Mode, false)
	b = append(b, `,"allowed":`...)
	b = strconv.AppendBool(b, e.Allowed)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = appendField(b, "reason", e.Reason, false)
	b = appendField(b, "detail", e.Detail, true)
	b = appendField(b, "principal", e.Principal, true)
	b = appendField(b, "action", e.Action, true)
	b = appendField(b, "source_spiffe_id", e.SourceSPIFFE, true)
	b = appendField(b, "source_address", e.SourceAddress, true)
	b = appendField(b, "method", e.Method, true)
	b = appendField(b, "path", e.Path, true)
	b = appendField(b, "jwt_provider", e.JWTProvider, true)
	b = appendField(b, "jwt_error", e.JWTError, true)
	if len(e.Policies) > 0 {
		b = append(b, `,"policies":`...)
		b = appendStrings(b, e.Policies)
	}
	if len(e.Errors) > 0 {
		b = append(b, `,"errors":[`...)
		for i, pe := range e.Errors {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"policy":`...)
			b = appendString(b, pe.Policy)
			b = append(b, `,"message":`...)
			b = appendString(b, pe.Message)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if e.WouldAllow != nil {
		b = append(b, `,"would_allow":`...)
		b = strconv.AppendBool(b, *e.WouldAllow)
	}
	b = appendField(b, "would_reason", e.WouldReason, true)
	if s := e.Shadow; s != nil {
		b = append(b, `,"shadow":{"policy_set":`...)
		b = appendString(b, s.PolicySet)
		b = append(b, `,"allowed":`...)
		b = strconv.AppendBool(b, s.Allowed)
		if len(s.Policies) > 0 {
			b = append(b, `,"policies":`...)
			b = appendStrings(b, s.Policies)
		}
		b = appendField(b, "error", s.Error, true)
		b = append(b, '}')
	}
	if r := e.Rollout; r != nil {
		b = append(b, `,"rollout":{"candidate":`...)
		b = appendString(b, r.Candidate)
		b = appendField(b, "stage", r.Stage, false)
		b = appendField(b, "canary", r.Canary, true)
		b = appendField(b, "revision", r.Revision, true)
		b = appendField(b, "enforced", r.Enforced, false)
		b = appendField(b, "outcome", r.Outcome, false)
		b = append(b, `,"current_allowed":`...)
		b = strconv.AppendBool(b, r.CurrentAllowed)
		b = append(b, `,"candidate_allowed":`...)
		b = strconv.AppendBool(b, r.CandidateAllowed)
		if len(r.CandidatePolicies) > 0 {
			b = append(b, `,"candidate_policies":`...)
			b = appendStrings(b, r.CandidatePolicies)
		}
		if r.CandidateErrors != 0 {
			b = append(b, `,"candidate_errors":`...)
			b = strconv.AppendInt(b, int64(r.CandidateErrors), 10)
		}
		b = appendField(b, "error", r.Error, true)
		b = append(b, '}')
	}
	b = append(b, `,"duration_us":`...)
	b = strconv.AppendInt(b, e.DurationUS, 10)
	if e.Request != nil {
		// Opt-in, and nested Cedar values: encoding/json it is.
		if js, err := json.Marshal(e.Request); err == nil {
			b = append(b, `,"request":`...)
			b = append(b, js...)
		}
	}
	return append(b, '}')
}

func appendField(b []byte, key, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hex = "0123456789abcdef"

// appendString quotes s as a JSON string the way encoding/json does:
// control characters, '"', '\\', '<', '>', '&', U+2028 and U+2029 escaped,
// invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = utf8.AppendRune(b, utf8.RuneError) // as encoding/json since Go 1.27 (was the escape \ufffd)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
