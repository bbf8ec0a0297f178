package extauthz

import cedar "github.com/cedar-policy/cedar-go"

// uidString is u.String() (Cedar syntax, `Type::"id"`) without cedar-go's
// rune-by-rune escaping when the id needs none — SPIFFE IDs, subjects and
// HTTP methods almost never do. Every response and log line carries the
// principal, so this is on the hot path.
func uidString(u cedar.EntityUID) string {
	id := string(u.ID)
	for i := 0; i < len(id); i++ {
		// Printable ASCII except the characters Cedar escapes; space and
		// anything else take the exact slow path.
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '\'' {
			return u.String()
		}
	}
	return string(u.Type) + `::"` + id + `"`
}
