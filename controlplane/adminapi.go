package controlplane

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
	"strings"
	"unicode"

	"github.com/meshguard/meshguard/controlplane/rollout"
	"github.com/meshguard/meshguard/controlplane/translate"
)

// RolloutReport is served at /v1/rollouts.
type RolloutReport struct {
	Rollouts []rollout.Rollout `json:"rollouts"`
}

// RolloutCommand is the body of POST /v1/rollouts/{promote,rollback,pause,resume}.
type RolloutCommand struct {
	Route string `json:"route"`
	// Actor names who asks, for the audit trail (the CLI sends $USER).
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// maxCommandBytes bounds a command's body.
const maxCommandBytes = 64 << 10

// rolloutAPI serves the rollouts and the commands that move them.
//
// Commands change what every proxy enforces, so they are authenticated: by
// the admin token when one is configured (compared in constant time), and
// otherwise only served on a loopback admin listener. They also require a
// JSON body, which a browser cannot send across origins without a CORS
// preflight this server never answers: a web page cannot command a
// rollout on an operator's loopback.
func (s *Server) rolloutAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/rollouts", func(w http.ResponseWriter, r *http.Request) {
		if route := r.URL.Query().Get("route"); route != "" {
			ro, err := s.Rollouts.Get(route)
			if err != nil {
				writeError(w, http.StatusNotFound, err)
				return
			}
			writeJSON(w, http.StatusOK, RolloutReport{Rollouts: []rollout.Rollout{ro}})
			return
		}
		writeJSON(w, http.StatusOK, RolloutReport{Rollouts: s.Rollouts.Status()})
	})
	mux.HandleFunc("POST /v1/rollouts/{verb}", func(w http.ResponseWriter, r *http.Request) {
		if code, err := s.authorizeCommand(r); err != nil {
			if code == http.StatusUnauthorized {
				w.Header().Set("www-authenticate", `Bearer realm="meshguard-controlplane"`)
			}
			writeError(w, code, err)
			return
		}
		var cmd RolloutCommand
		dec := json.NewDecoder(io.LimitReader(r.Body, maxCommandBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cmd); err != nil {
			writeError(w, http.StatusBadRequest, errors.New("body: "+err.Error()))
			return
		}
		if cmd.Route == "" {
			writeError(w, http.StatusBadRequest, errors.New("body: route is required"))
			return
		}
		actor := printable(cmd.Actor, 128)
		if actor == "" {
			actor = "unnamed"
		}
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			actor += "@" + host
		}
		ro, err := s.Rollouts.Command(r.PathValue("verb"), cmd.Route, actor, printable(cmd.Reason, 1024))
		switch {
		case errors.Is(err, rollout.ErrNoRollout):
			writeError(w, http.StatusNotFound, err)
		case errors.Is(err, rollout.ErrConflict):
			writeError(w, http.StatusConflict, err)
		case err != nil:
			writeError(w, http.StatusBadRequest, err)
		default:
			writeJSON(w, http.StatusOK, ro)
		}
	})
}

// authorizeCommand admits a command request, or says why not.
func (s *Server) authorizeCommand(r *http.Request) (int, error) {
	if s.cfg.AdminToken != "" {
		tok, ok := strings.CutPrefix(r.Header.Get("authorization"), "Bearer ")
		// Hashing first makes the comparison constant-time in the token's
		// length too.
		got, want := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(s.cfg.AdminToken))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return http.StatusUnauthorized, errors.New("a valid admin token is required (meshguard rollout --token-file)")
		}
	} else if !s.adminIsLoopback() {
		return http.StatusForbidden, errors.New("commands on a non-loopback admin listener need an admin token: start the control plane with --admin-token-file")
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("content-type")); mt != "application/json" {
		return http.StatusUnsupportedMediaType, errors.New("commands take a JSON body (content-type: application/json)")
	}
	return 0, nil
}

func (s *Server) adminIsLoopback() bool {
	if s.adminLis == nil {
		return false
	}
	a, ok := s.adminLis.Addr().(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}

// printable keeps s's printable characters, at most n bytes: what an
// operator typed ends up in logs and the audit trail.
func printable(s string, n int) string {
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

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// RoutesReport is served at /v1/routes/{service}: the service's routes as
// its sidecars get them now, rollouts at their step in force. A proxyless
// workload that asks the authorizer itself (gRPC-Go has no ext_authz) reads
// its context extensions here.
type RoutesReport struct {
	Service string                   `json:"service"`
	Routes  []translate.RouteContext `json:"routes"`
}

func (s *Server) routesAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/routes/{service}", func(w http.ResponseWriter, r *http.Request) {
		m := s.Builder.Mesh()
		if m == nil {
			writeError(w, http.StatusServiceUnavailable, errors.New("no mesh loaded"))
			return
		}
		svc, ok := m.Service(r.PathValue("service"))
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Errorf("no service %q", r.PathValue("service")))
			return
		}
		writeJSON(w, http.StatusOK, RoutesReport{Service: svc.Name, Routes: translate.ServiceRoutes(svc)})
	})
}
