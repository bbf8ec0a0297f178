// Package admincmd authenticates the commands an admin listener serves
// (rollout moves, revocations): the state-changing requests of meshguard's
// admin APIs, shared by the control plane and the authorizer.
//
// A command is admitted with the admin token when one is configured
// (compared in constant time), and otherwise only on a loopback listener.
// It must also carry a JSON body, which a browser cannot send across
// origins without a CORS preflight these servers never answer: a web page
// cannot command an operator's loopback admin.
package admincmd

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"strings"
	"unicode"
)

// MaxBodyBytes bounds a command's body.
const MaxBodyBytes = 64 << 10

// MinTokenBytes is the shortest admin token accepted.
const MinTokenBytes = 16

// Gate admits commands.
type Gate struct {
	// Token, when set, is required as "Authorization: Bearer <token>".
	Token string
	// Listener is the admin listener: without a token, commands are
	// admitted only when it is on loopback.
	Listener net.Listener
	// Hint names how to configure the token, for the refusal message.
	Hint string
}

// ReadToken reads an admin token file (surrounding space trimmed).
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < MinTokenBytes {
		return "", fmt.Errorf("admin token in %s: at least %d characters", path, MinTokenBytes)
	}
	return tok, nil
}

// Admit decides a command request; a refusal has its HTTP status.
func (g *Gate) Admit(r *http.Request) (int, error) {
	if g.Token != "" {
		tok, ok := strings.CutPrefix(r.Header.Get("authorization"), "Bearer ")
		// Hashing first makes the comparison constant-time in the
		// token's length too.
		got, want := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(g.Token))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return http.StatusUnauthorized, errors.New("a valid admin token is required")
		}
	} else if !g.loopback() {
		return http.StatusForbidden, fmt.Errorf("commands on a non-loopback admin listener need an admin token: %s", g.Hint)
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("content-type")); mt != "application/json" {
		return http.StatusUnsupportedMediaType, errors.New("commands take a JSON body (content-type: application/json)")
	}
	return 0, nil
}

func (g *Gate) loopback() bool {
	if g.Listener == nil {
		return false
	}
	a, ok := g.Listener.Addr().(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}

// Decode admits r and decodes its JSON body into v strictly (unknown
// fields refused), writing the refusal when it fails.
func (g *Gate) Decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if code, err := g.Admit(r); err != nil {
		if code == http.StatusUnauthorized {
			w.Header().Set("www-authenticate", `Bearer realm="meshguard-admin"`)
		}
		WriteError(w, code, err)
		return false
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		WriteError(w, http.StatusBadRequest, errors.New("body: "+err.Error()))
		return false
	}
	return true
}

// Actor names who asked, for an audit trail: the name the client gave
// (printable, bounded) and the address it came from.
func Actor(r *http.Request, name string) string {
	actor := Printable(name, 128)
	if actor == "" {
		actor = "unnamed"
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		actor += "@" + host
	}
	return actor
}

// Printable keeps s's printable characters, at most n bytes: what an
// operator typed ends up in logs and audit trails.
func Printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// WriteJSON writes v as indented JSON with status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteError writes {"error": err}.
func WriteError(w http.ResponseWriter, code int, err error) {
	WriteJSON(w, code, map[string]string{"error": err.Error()})
}
