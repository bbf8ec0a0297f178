package jwt

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

// MaxClaimDepth bounds nesting when claims become Cedar values; deeper
// values are dropped.
const MaxClaimDepth = 8

// MaxRoles bounds the roles taken from the roles claim.
const MaxRoles = 256

// ClaimsRecord maps a token's claims to a Cedar record. Cedar has no null and
// no binary floating point, so:
//
//   - strings, booleans → String, Boolean
//   - integers that fit in 64 bits → Long
//   - other numbers → decimal when exactly representable with at most four
//     fractional digits (Cedar's decimal), otherwise dropped
//   - null → dropped (so `context.jwt has x` is false)
//   - arrays → Set (dropped members are left out); objects → Record
//
// Dropped values are counted in the second result.
func ClaimsRecord(claims map[string]any) (cedar.Record, int) {
	dropped := 0
	m := make(cedar.RecordMap, len(claims))
	for k, v := range claims {
		if cv, ok := claimValue(v, 1, &dropped); ok {
			m[cedar.String(k)] = cv
		}
	}
	return cedar.NewRecord(m), dropped
}

func claimValue(v any, depth int, dropped *int) (cedar.Value, bool) {
	if depth > MaxClaimDepth {
		*dropped++
		return nil, false
	}
	switch t := v.(type) {
	case string:
		return cedar.String(t), true
	case bool:
		return cedar.Boolean(t), true
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return cedar.Long(i), true
		}
		s := t.String()
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		if d, err := types.ParseDecimal(s); err == nil {
			return d, true
		}
	case []any:
		vals := make([]cedar.Value, 0, len(t))
		for _, e := range t {
			if cv, ok := claimValue(e, depth+1, dropped); ok {
				vals = append(vals, cv)
			}
		}
		return cedar.NewSet(vals...), true
	case map[string]any:
		m := make(cedar.RecordMap, len(t))
		for k, e := range t {
			if cv, ok := claimValue(e, depth+1, dropped); ok {
				m[cedar.String(k)] = cv
			}
		}
		return cedar.NewRecord(m), true
	case nil:
		return nil, false
	}
	*dropped++
	return nil, false
}

// Roles reads the roles claim at a dotted path. An array contributes each
// string member; a string is split on spaces (the OAuth "scope" convention).
func Roles(claims map[string]any, path string) []string {
	if path == "" {
		return nil
	}
	var cur any = claims
	for _, seg := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[seg]
	}
	var roles []string
	add := func(s string) {
		if s != "" && len(roles) < MaxRoles && utf8.ValidString(s) {
			roles = append(roles, s)
		}
	}
	switch t := cur.(type) {
	case string:
		for _, f := range strings.Fields(t) {
			add(f)
		}
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok {
				add(s)
			}
		}
	}
	return roles
}

// UserEntity builds the User principal: its UID is the subject, its parents
// the roles, its attributes the claims.
func UserEntity(sub string, roles []string, claims cedar.Record) cedar.Entity {
	parents := make([]cedar.EntityUID, len(roles))
	for i, r := range roles {
		parents[i] = cedar.NewEntityUID("Role", cedar.String(r))
	}
	return cedar.Entity{
		UID:        cedar.NewEntityUID("User", cedar.String(sub)),
		Parents:    cedar.NewEntityUIDSet(parents...),
		Attributes: claims,
	}
}
